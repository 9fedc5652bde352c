"""The security office's monitoring station (`officeguard station`, docs/station.md)."""
