"""Fails to import, like a plugin whose dependency is not installed."""

import otus_fake_dependency_that_is_not_installed  # noqa: F401
