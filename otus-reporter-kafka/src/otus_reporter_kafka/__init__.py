"""Otus reporter: records to Kafka in the Go Otus wire format."""
