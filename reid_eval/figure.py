"""Figures of ranked images — a query beside the gallery images ranked first — drawn once for every
tool that shows a ranking: framed cells with lines of text under them, laid out in rows under a
header, and written atomically."""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from reid_data import load_resized

FRAME, PAD, GAP = 3, 2, 8          # frame width; pixels between cells; between a query and its list
FONT_SIZE, LINE = 10, 12           # text: one line's height
QUERY = (0, 90, 220)               # the frame of a query
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


@functools.lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow before 10.1: the fixed bitmap font
        return ImageFont.load_default()


def picture(path: str | Path, height: int, width: int) -> Image.Image:
    """The image at `path` at a model's input size, resized as evaluation resizes it."""
    return Image.fromarray(load_resized(str(path), height, width).permute(1, 2, 0).numpy())


def cell(image: Image.Image, colour: tuple, lines: Sequence[tuple[str, tuple]], faded: bool = False) -> Image.Image:
    """An image in a frame of `colour` with (text, colour) lines under it."""
    w, h = image.size
    out = Image.new("RGB", (w + 2 * FRAME, h + 2 * FRAME + len(lines) * LINE + PAD), WHITE)
    out.paste(colour, (0, 0, w + 2 * FRAME, h + 2 * FRAME))
    out.paste(Image.blend(image, Image.new("RGB", image.size, WHITE), 0.55) if faded else image, (FRAME, FRAME))
    draw, text_font = ImageDraw.Draw(out), font()
    for i, (text, text_colour) in enumerate(lines):
        draw.text((FRAME, h + 2 * FRAME + PAD + i * LINE), text, fill=text_colour, font=text_font)
    return out


def fitted(text: str, width: int) -> str:
    """`text`, cut short with ".." where it would run past `width` pixels (a cell's width)."""
    draw, text_font = ImageDraw.Draw(Image.new("RGB", (1, 1))), font()
    if draw.textlength(text, font=text_font) <= width:
        return text
    while text and draw.textlength(text + "..", font=text_font) > width:
        text = text[:-1]
    return text + ".."


def rows_figure(header: Sequence[str], rows: Sequence[Sequence[Image.Image]]) -> Image.Image:
    """Rows of equal cells, each row's first (its query) set apart by a gap, under the `header` lines."""
    cw, ch = rows[0][0].size
    columns = max(len(r) for r in rows)
    header_height = len(header) * LINE + 2 * PAD
    draw, text_font = ImageDraw.Draw(Image.new("RGB", (1, 1))), font()
    text_width = max(draw.textlength(text, font=text_font) for text in header)
    page = Image.new("RGB", (max(PAD + columns * (cw + PAD) + GAP, 2 * PAD + int(text_width) + 1),
                             header_height + len(rows) * (ch + PAD)), WHITE)
    draw = ImageDraw.Draw(page)
    for i, text in enumerate(header):
        draw.text((PAD, PAD + i * LINE), text, fill=BLACK, font=text_font)
    for r, cells in enumerate(rows):
        y = header_height + r * (ch + PAD)
        for c, image in enumerate(cells):
            page.paste(image, (PAD + c * (cw + PAD) + (GAP if c else 0), y))
    return page


def save(image: Image.Image, path: str | Path, **options) -> Path:
    """Write `image` atomically (temp file + rename): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        image.save(tmp, **options)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
