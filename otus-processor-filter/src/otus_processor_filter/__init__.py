"""Otus processor: filter and label records by labels and 5-tuple.

The plugin registers as ``filter`` through :mod:`otus_processor_filter.plugin`.
"""

from otus_processor_filter.options import Condition, FilterOptions, Rule
from otus_processor_filter.processor import FilterProcessor

__all__ = ["Condition", "FilterOptions", "FilterProcessor", "Rule"]
