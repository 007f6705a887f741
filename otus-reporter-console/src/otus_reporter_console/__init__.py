"""Otus reporter: records to the console or a file as JSON lines or text."""
