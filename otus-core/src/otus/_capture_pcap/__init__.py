"""The built-in pcap / pcapng file capturer (registered through the plugin path as ``pcap``)."""
