"""Implements a hook otus does not define (a typo, or written for a newer otus-core)."""

import otus


@otus.hookimpl
def otus_parsrs() -> list[object]:
    return []
