"""The daemon: lifecycle (signals, start, drain, stop), tasks and worker supervision."""
