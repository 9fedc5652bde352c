"""The pure engine and the concepts it reads: sensor types, event kinds, events."""
