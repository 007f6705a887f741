"""The filter processor: rules compiled once, evaluated over each record batch."""

from __future__ import annotations

from otus import PluginContext, Processor, Record
from otus_processor_filter._compile import compile_condition, resolve_labels
from otus_processor_filter.options import FilterOptions

__all__ = ["FilterProcessor"]

_KEEP, _DROP, _LABEL = 0, 1, 2
_ACTIONS = {"keep": _KEEP, "drop": _DROP, "label": _LABEL}


class FilterProcessor(Processor):
    """Keeps, drops and labels records by rules (see the README for the rule language)."""

    def __init__(self, options: FilterOptions, context: PluginContext | None = None) -> None:
        context = context or PluginContext()
        self._names = [
            r.name if r.name is not None else str(i) for i, r in enumerate(options.rules)
        ]
        self._rules = tuple(
            (
                i,
                compile_condition(rule.match),
                _ACTIONS[rule.action],
                resolve_labels(rule.labels, context, f"rules[{i}].labels"),
            )
            for i, rule in enumerate(options.rules)
        )
        self._default_keep = options.default == "keep"
        self.kept = 0
        self.labelled = 0
        self.dropped_default = 0
        self.dropped = [0] * len(self._rules)

    def process(self, records: list[Record]) -> list[Record]:
        rules = self._rules
        dropped = self.dropped
        out: list[Record] = []
        keep = out.append
        labelled = 0
        dropped_default = 0
        for record in records:
            for index, matches, action, labels in rules:
                if not matches(record):
                    continue
                if action == _LABEL:
                    record.labels.update(labels)
                    labelled += 1
                    continue
                if action == _KEEP:
                    keep(record)
                else:
                    dropped[index] += 1
                break
            else:
                if self._default_keep:
                    keep(record)
                else:
                    dropped_default += 1
        self.kept += len(out)
        self.labelled += labelled
        self.dropped_default += dropped_default
        return out

    def stats(self) -> dict[str, int]:
        stats = {"kept": self.kept, "labelled": self.labelled}
        for name, count in zip(self._names, self.dropped, strict=True):
            stats[f"dropped.{name}"] = count
        stats["dropped.default"] = self.dropped_default
        return stats
