"""The batch decoder (C via cffi): L2-L4, tunnels, IP fragment reassembly, classification."""
