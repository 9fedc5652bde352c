"""Schedules and the holiday calendar: pure transitions, the component, end to end."""
