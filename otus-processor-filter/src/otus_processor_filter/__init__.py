"""Otus processor: filter and label records by labels and 5-tuple."""
