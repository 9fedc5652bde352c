"""Distances and directions on the Earth, for telling the guard how far away a drone is.

Used to turn a drone's reported position into "200 m from the building, to the north-east".
The Earth is taken as a sphere of the mean radius (IUGG R1 = 6 371 008.8 m); over the few
kilometres a Remote ID broadcast carries, this is within a few centimetres per 100 m of the
ellipsoidal distance, far below the accuracy of a drone's own GNSS fix.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    a = min(1.0, max(0.0, a))
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def initial_bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing (forward azimuth) from point 1 to point 2: degrees clockwise from true
    north, in [0, 360). The bearing between identical points is 0."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    if x == 0.0 and y == 0.0:
        return 0.0
    deg = math.degrees(math.atan2(y, x)) % 360.0
    return 0.0 if deg >= 360.0 else deg


def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """The point `distance_m` metres from (lat, lon) along the initial bearing `bearing_deg`.
    Longitude is normalised to [-180, 180)."""
    p1, l1 = math.radians(lat), math.radians(lon)
    th = math.radians(bearing_deg)
    d = distance_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(th))
    l2 = l1 + math.atan2(
        math.sin(th) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def compass_point(bearing_deg: float) -> int:
    """The nearest of the 8 compass points: 0 = N, 1 = NE, 2 = E ... 7 = NW."""
    return int(((bearing_deg % 360.0) + 22.5) // 45.0) % 8
