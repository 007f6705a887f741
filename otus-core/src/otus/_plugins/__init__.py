"""Plugin loading: entry points (stevedore) → pluggy hooks → a registry of specs by kind.

Public entry point for the rest of core: :func:`otus._plugins.registry.load_registry`.
"""
