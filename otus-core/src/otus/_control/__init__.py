"""The local control plane: JSON-RPC 2.0 over a Unix socket (design §5)."""
