"""Reporting to the office: the MQTT link, the outbox, discovery, the office's broker."""
