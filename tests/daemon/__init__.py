"""The daemon's core: config, components, timers, locks, errors, logs, the CLI."""
