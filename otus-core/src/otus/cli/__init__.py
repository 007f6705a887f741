"""The ``otus`` command line. Entry point: :func:`otus.cli.main.main`."""
