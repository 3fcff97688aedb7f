"""The image files of a folder of a user's own images (not a data set's layout), at any depth."""
from __future__ import annotations

from pathlib import Path

from .image import IMAGE_EXTENSIONS
from .records import DatasetError


def image_files_under(folder: str | Path, what: str = "folder") -> list[Path]:
    """The image files in `folder` and its sub-folders, sorted by path; a DatasetError naming the
    folder as `what` ("input folder") when it does not exist or holds none."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{what} {folder} does not exist")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not images:
        raise DatasetError(f"{what} {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return images
