"""A traffic sparkline as inline SVG, drawn on the server (no chart library in the browser).

Input: cumulative byte totals in time order; the line shows the traffic between consecutive
points (a total never decreases, so no difference is negative). Output: a self-contained <svg>.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 240
HEIGHT = 40


def deltas(totals: Sequence[int]) -> list[int]:
    return [max(0, b - a) for a, b in zip(totals, totals[1:], strict=False)]


def sparkline_svg(totals: Sequence[int], label: str) -> str:
    """An SVG polyline of the traffic between points; an empty frame when there are fewer than 3."""
    values = deltas(totals)
    head = (
        f'<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
    )
    if len(values) < 2:
        return head + f"<title>{escape(label)}: not enough history yet</title></svg>"
    top = max(values) or 1
    step = WIDTH / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{HEIGHT - 2 - (v / top) * (HEIGHT - 4):.1f}" for i, v in enumerate(values))
    return (
        head
        + f"<title>{escape(label)}</title>"
        + f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/></svg>'
    )
