"""The keypad: codes typed at a matrix keypad (`logic`, pure: sessions, entry timeout, what a key
sequence asks for) and the component that drives the keypads on the site (`component`).
"""
