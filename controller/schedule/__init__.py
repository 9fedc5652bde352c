"""Arming by schedule and by the public-holiday calendar: the calendar (`calendar`), the pure
transitions of each schedule (`transitions`), the component that arms and disarms on the site's
clock (`component`) and `officeguard schedule` (`cli`).
"""
