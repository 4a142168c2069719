"""Plane geometry on node outlines (网格边界): GeoJSON polygons, point-in-polygon, bounding
boxes, and the Voronoi subdivision the demo net draws its synthetic boundaries with.

Coordinates are WGS-84 ``(lon, lat)`` pairs as in GeoJSON, treated as a plane: the areas
involved (a province at most) are small enough for that, and nothing here measures distance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

Point = tuple[float, float]
Ring = list[Point]


def rings_of(geometry: str | dict[str, Any] | None) -> list[Ring]:
    """The outer rings of a GeoJSON Polygon or MultiPolygon (holes are ignored); [] otherwise."""
    if not geometry:
        return []
    try:
        geo = json.loads(geometry) if isinstance(geometry, str) else geometry
    except ValueError:
        return []
    if not isinstance(geo, dict):
        return []
    kind, coords = geo.get("type"), geo.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    out = []
    for poly in polygons or []:
        if poly and poly[0]:
            out.append([(float(p[0]), float(p[1])) for p in poly[0]])
    return out


def bbox(rings: Sequence[Ring]) -> tuple[float, float, float, float]:
    """``(min lon, min lat, max lon, max lat)`` of the rings."""
    xs = [p[0] for r in rings for p in r]
    ys = [p[1] for r in rings for p in r]
    return min(xs), min(ys), max(xs), max(ys)


def ring_contains(ring: Ring, x: float, y: float) -> bool:
    """Even-odd ray casting; a closing point equal to the first is allowed."""
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def contains(geometry: str | dict[str, Any] | None, lon: float, lat: float) -> bool:
    """Does the (Multi)Polygon ``geometry`` contain the point?"""
    return any(ring_contains(r, lon, lat) for r in rings_of(geometry))


def area_centroid(ring: Ring) -> Point:
    """The centroid of a simple polygon (the vertex mean when it is degenerate)."""
    pts = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    a = cx = cy = 0.0
    for i in range(len(pts)):
        x1, y1 = pts[i]
        x2, y2 = pts[(i + 1) % len(pts)]
        cross = x1 * y2 - x2 * y1
        a += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(a) < 1e-15:
        return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    return cx / (3 * a), cy / (3 * a)


def point_from_unit(ring: Ring, u: float, v: float) -> Point:
    """Map ``(u, v)`` in the unit square to a point inside ``ring`` (a polygon star-shaped around
    its centroid, e.g. convex): the point at those fractions of the bounding box, pulled halfway
    towards the centroid until it is inside."""
    x0, y0, x1, y1 = bbox([ring])
    cx, cy = area_centroid(ring)
    x, y = x0 + u * (x1 - x0), y0 + v * (y1 - y0)
    for _ in range(40):
        if ring_contains(ring, x, y):
            return x, y
        x, y = (x + cx) / 2, (y + cy) / 2
    return cx, cy


def point_inside(geometry: str | dict[str, Any] | None, u: float, v: float) -> tuple[float, float] | None:
    """A point ``(lat, lon)`` inside the (first outer ring of the) outline, picked by ``u``, ``v``
    in [0, 1) — e.g. to place demo objects in their grid; None without an outline."""
    rings = rings_of(geometry)
    if not rings:
        return None
    lon, lat = point_from_unit(rings[0], u, v)
    return lat, lon


def polygon_json(ring: Ring, digits: int = 6) -> str:
    """A GeoJSON Polygon of one closed ring, rounded to ``digits`` (≈0.1 m at 6)."""
    pts = [[round(x, digits), round(y, digits)] for x, y in ring]
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    return json.dumps({"type": "Polygon", "coordinates": [pts]}, separators=(",", ":"))


def convex_hull(points: Sequence[Point]) -> Ring:
    """Counter-clockwise hull (Andrew's monotone chain), without the closing point."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return list(pts)

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: Ring = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: Ring = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def clip(ring: Ring, a: float, b: float, c: float) -> Ring:
    """The part of a convex polygon where ``a·x + b·y ≤ c`` (Sutherland–Hodgman, one edge)."""
    out: Ring = []
    n = len(ring)
    for i in range(n):
        p, q = ring[i], ring[(i + 1) % n]
        fp, fq = a * p[0] + b * p[1] - c, a * q[0] + b * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def voronoi(region: Ring, seeds: Sequence[Point]) -> list[Ring]:
    """The Voronoi cells of ``seeds`` clipped to the convex ``region`` (open ring, no closing
    point): convex, disjoint, covering the region, each holding its seed when the seed is in it."""
    cells = []
    for i, (xi, yi) in enumerate(seeds):
        cell = list(region)
        for j, (xj, yj) in enumerate(seeds):
            if i == j or not cell:
                continue
            # Closer to seed i than to seed j: (sj − si)·p ≤ (|sj|² − |si|²) / 2.
            cell = clip(cell, xj - xi, yj - yi, (xj * xj + yj * yj - xi * xi - yi * yi) / 2)
        cells.append(cell)
    return cells


def spread_points(ring: Ring, n: int, draw: Any, fixed: Sequence[Point] = (), tries: int = 8) -> list[Point]:
    """``n`` points inside ``ring``, spread out (Mitchell's best candidate: of ``tries`` random
    candidates keep the one farthest from the points so far, ``fixed`` included). ``draw()``
    returns a float in [0, 1)."""
    chosen: list[Point] = list(fixed)
    out: list[Point] = []
    for _ in range(n):
        best, best_d = None, -1.0
        for _ in range(tries):
            p = point_from_unit(ring, draw(), draw())
            d = min((math.dist(p, q) for q in chosen), default=math.inf)
            if d > best_d:
                best, best_d = p, d
        assert best is not None
        chosen.append(best)
        out.append(best)
    return out
