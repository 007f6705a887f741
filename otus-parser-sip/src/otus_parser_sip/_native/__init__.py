"""C fast path of the SIP parser (built by cffi; optional at run time)."""
