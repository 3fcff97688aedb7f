"""Reading one image file, with an error that names the file."""
from __future__ import annotations

from PIL import Image

from configs.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ImageReadError(UserError, OSError):
    """An image file is missing, unreadable or corrupt; the message names it."""


def read_image(path: str) -> Image.Image:
    """The image at `path` as RGB, fully decoded (so no file handle stays open)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as err:
        raise ImageReadError(f"image {path} is missing") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # PIL reports truncated or garbled data as any of these.
        raise ImageReadError(f"image {path} is unreadable or corrupt ({err})") from err
