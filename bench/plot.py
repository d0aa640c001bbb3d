"""plot: the benchmark's figure (PNG) drawn with Pillow, which Gradio already brings."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

COLOURS = {"direct": (120, 120, 120), "app": (219, 39, 119), "peer": (37, 99, 235)}
WIDTH, HEIGHT, MARGIN = 1200, 520, 70


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def plot(rows: list[Any], path: Path) -> None:
    """Two panels against simultaneous chats: median TTFT (s) and CPU ms per 1,000 tokens (log scales)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    short = [row for row in rows if not row.label and row.ttft]
    panels = [
        ("median time to first token (s)", lambda row: statistics.median(row.ttft), list(COLOURS)),
        ("server CPU ms per 1,000 tokens", lambda row: row.cpu_ms_per_1k_tokens, ["app", "peer"]),
    ]
    for index, (title, value_of, modes) in enumerate(panels):
        left = MARGIN + index * (WIDTH // 2)
        _panel(
            draw,
            (left, MARGIN, left + WIDTH // 2 - 2 * MARGIN, HEIGHT - MARGIN),
            title,
            {
                mode: [(row.chats, value_of(row)) for row in short if row.mode == mode and value_of(row)]
                for mode in modes
            },
        )
    for offset, (mode, colour) in enumerate(COLOURS.items()):
        draw.rectangle((MARGIN + offset * 140, 20, MARGIN + offset * 140 + 18, 38), fill=colour)
        draw.text((MARGIN + offset * 140 + 26, 20), mode, fill="black", font=_font(16))
    image.save(path)


def _panel(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], title: str, series: dict[str, list[tuple[int, float]]]
) -> None:
    import math

    x0, y0, x1, y1 = box
    points = [point for values in series.values() for point in values]
    if not points:
        return
    xs = sorted({x for x, _ in points})
    low, high = min(y for _, y in points), max(y for _, y in points)
    low, high = math.log10(low) - 0.1, math.log10(high) + 0.1

    def place(x: int, y: float) -> tuple[float, float]:
        column = xs.index(x) / max(1, len(xs) - 1)
        return x0 + column * (x1 - x0), y1 - (math.log10(y) - low) / (high - low) * (y1 - y0)

    draw.rectangle(box, outline=(200, 200, 200))
    draw.text((x0, y0 - 24), title, fill="black", font=_font(16))
    for x in xs:
        px, _ = place(x, 10**low)
        draw.text((px - 8, y1 + 8), str(x), fill="black", font=_font(14))
    draw.text(((x0 + x1) / 2 - 70, y1 + 30), "simultaneous chats", fill="black", font=_font(14))
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for step in (1, 2, 5):
            value = step * 10**exponent
            if low <= math.log10(value) <= high:
                _, py = place(xs[0], value)
                draw.line((x0, py, x1, py), fill=(235, 235, 235))
                draw.text((x0 - 55, py - 8), f"{value:g}", fill="black", font=_font(13))
    for mode, values in series.items():
        placed = [place(x, y) for x, y in sorted(values)]
        if len(placed) > 1:
            draw.line(placed, fill=COLOURS[mode], width=3)
        for px, py in placed:
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=COLOURS[mode])
