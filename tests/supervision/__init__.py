"""Supervised wiring and power: bands, the ADC, the component, the installer's tools, end to end."""
