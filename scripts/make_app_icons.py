"""Draws the authenticator app's icons (PNG 192 and 512) with the standard library only.

The design: a rounded square in the theme colour with a white shield and a check mark, kept
inside the central 80 % so the same file works as a maskable icon. Run from the repository
root: `python scripts/make_app_icons.py`.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent / "src" / "backchannel" / "authenticator" / "app"
BACKGROUND = (0x0B, 0x4F, 0x8A)
FOREGROUND = (0xFF, 0xFF, 0xFF)
SAMPLES = 3  # supersampling per axis, for smooth edges


def shield(x: float, y: float) -> bool:
    """The shield outline in unit coordinates (0..1): a flat top that narrows to a point."""
    if not 0.26 <= y <= 0.80 or not 0.26 <= x <= 0.74:
        return False
    if y <= 0.52:
        return True
    half_width = 0.24 * math.cos((y - 0.52) / 0.28 * math.pi / 2)
    return abs(x - 0.5) <= half_width


def _distance_to_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def check_mark(x: float, y: float) -> bool:
    width = 0.035
    return (
        _distance_to_segment(x, y, 0.39, 0.50, 0.47, 0.58) <= width
        or _distance_to_segment(x, y, 0.47, 0.58, 0.62, 0.42) <= width
    )


def colour_at(x: float, y: float) -> tuple[int, int, int]:
    if shield(x, y) and not check_mark(x, y):
        return FOREGROUND
    return BACKGROUND


def pixel(size: int, col: int, row: int) -> tuple[int, int, int]:
    totals = [0, 0, 0]
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            x = (col + (sx + 0.5) / SAMPLES) / size
            y = (row + (sy + 0.5) / SAMPLES) / size
            for i, value in enumerate(colour_at(x, y)):
                totals[i] += value
    count = SAMPLES * SAMPLES
    return (totals[0] // count, totals[1] // count, totals[2] // count)


def png(size: int) -> bytes:
    rows = bytearray()
    for row in range(size):
        rows.append(0)  # filter type: none
        for col in range(size):
            rows.extend(pixel(size, col, row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    for size in (192, 512):
        target = APP_DIR / f"icon-{size}.png"
        target.write_bytes(png(size))
        print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
