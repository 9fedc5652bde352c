"""Drivers on gpiozero's mock pins, a real pty, and the config-to-pins mapping."""
