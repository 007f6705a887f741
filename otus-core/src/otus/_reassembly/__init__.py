"""Reassembly stage: IP fragments (in C, with the decoder) and TCP streams (``tcp``)."""
