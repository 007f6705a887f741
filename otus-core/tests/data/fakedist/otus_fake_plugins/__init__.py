"""A throw-away plugin distribution for the plugin-loading tests (put on sys.path by a fixture).

Small on purpose: a working capturer, processor and reporter, plus every way a plugin can fail.
"""
