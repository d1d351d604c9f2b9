"""Avro schemas of the events the ingestor publishes: the .avsc files and their codec."""
