"""Example third-party Otus plugin: a syslog parser (see docs/plugin-guide.md)."""
