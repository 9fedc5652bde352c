"""The keypad: its pure logic, its component, and a keypad end to end."""
