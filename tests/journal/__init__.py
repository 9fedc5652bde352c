"""The logbook: durability, channels and migrations, a disk that fails."""
