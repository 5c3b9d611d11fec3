"""The report's chart, drawn on the server as SVG: accepted → ready minutes per hour of the day,
the average as a bar and the 90th percentile as a mark above it. Pure text; no script, no style
attribute (the page shows it as an image under its strict Content-Security-Policy)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 36, 40
BAR = "#2563eb"
P90 = "#b45309"
INK = "#1f2937"
GRID = "#d1d5db"


def _nice_top(value: float) -> int:
    for step in (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240):
        if value <= step:
            return step
    return int(value) + 1


def prep_chart(report: dict[str, Any]) -> str:
    hours = report["hours"]
    title = f"Accepted to ready, minutes per hour, {report['date']}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
             f'font-size="12"><title>{escape(title)}</title>',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
             f'<text x="{LEFT}" y="20" fill="{INK}" font-size="14" font-weight="bold">{escape(title)}</text>']
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if not hours:
        parts.append(f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" fill="{INK}" text-anchor="middle">'
                     'No order was readied this day.</text></svg>')
        return "".join(parts)
    top = _nice_top(max(h["p90Minutes"] for h in hours))
    for tick in range(0, top + 1, max(1, top // 5)):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" fill="{INK}" text-anchor="end">{tick}</text>')
    first, last = hours[0]["hour"], hours[-1]["hour"]
    slots = last - first + 1
    slot_w = plot_w / slots
    for h in hours:
        x = LEFT + (h["hour"] - first) * slot_w
        bar_h = plot_h * h["averageMinutes"] / top
        p90_y = TOP + plot_h - plot_h * h["p90Minutes"] / top
        parts.append(f'<rect x="{x + slot_w * 0.2:.1f}" y="{TOP + plot_h - bar_h:.1f}" width="{slot_w * 0.6:.1f}" '
                     f'height="{bar_h:.1f}" fill="{BAR}"><title>{h["hour"]:02d}:00, average '
                     f'{h["averageMinutes"]} min of {h["count"]}</title></rect>')
        parts.append(f'<line x1="{x + slot_w * 0.15:.1f}" x2="{x + slot_w * 0.85:.1f}" y1="{p90_y:.1f}" '
                     f'y2="{p90_y:.1f}" stroke="{P90}" stroke-width="3"><title>{h["hour"]:02d}:00, 90th percentile '
                     f'{h["p90Minutes"]} min</title></line>')
    for hour in range(first, last + 1):
        x = LEFT + (hour - first + 0.5) * slot_w
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" fill="{INK}" text-anchor="middle">{hour:02d}</text>')
    legend_y = HEIGHT - 8
    parts.append(f'<rect x="{LEFT}" y="{legend_y - 9}" width="12" height="10" fill="{BAR}"/>'
                 f'<text x="{LEFT + 16}" y="{legend_y}" fill="{INK}">average</text>'
                 f'<line x1="{LEFT + 90}" x2="{LEFT + 104}" y1="{legend_y - 4}" y2="{legend_y - 4}" stroke="{P90}" '
                 f'stroke-width="3"/><text x="{LEFT + 108}" y="{legend_y}" fill="{INK}">90th percentile</text>'
                 f'<text x="{WIDTH - RIGHT}" y="{legend_y}" fill="{INK}" text-anchor="end">hour accepted</text></svg>')
    return "".join(parts)
