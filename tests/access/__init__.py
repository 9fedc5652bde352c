"""Codes, the access gate and its lockout."""
