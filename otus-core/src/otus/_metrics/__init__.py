"""Prometheus metrics of the daemon, built at scrape time from the workers' counters (design §7)."""
