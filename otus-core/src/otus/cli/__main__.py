"""``python -m otus.cli`` is the ``otus`` command."""

import sys

from otus.cli.main import main

sys.exit(main())
