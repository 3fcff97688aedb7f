"""Every image of a data set decoded once when it is loaded, so bad files are found together, before
training, not one a run after hours of it.

Verdicts are cached outside the data folder (``$XDG_CACHE_HOME/genreid``, default
``~/.cache/genreid``), keyed by absolute path, size and modification time: a second load decodes
only what changed. The data folder is never written to.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .image import ImageReadError, read_image
from .records import SHOWN, DatasetError, Sample, first_few  # noqa: F401  SHOWN: how many bad files the error names

THREADS = 8     # PIL decodes without holding the GIL, so threads use every core


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genreid"


def drop_unreadable(splits: dict[str, list[Sample]], folder: str, title: str,
                    skip: bool) -> tuple[dict[str, list[Sample]], list[str]]:
    """`splits` without the images that do not decode, and those images' paths.

    Unless `skip`, any such image is a `DatasetError` naming the first few, their count and a
    file listing all of them; with `skip` they are left out with a warning."""
    bad = unreadable(sorted({s.path for samples in splits.values() for s in samples}), folder)
    if not bad:
        return splits, []
    listing = write_listing(bad, folder)
    shown = first_few(os.path.relpath(p, folder) for p in bad)
    if not skip:
        raise DatasetError(f"{len(bad)} images of {title} at {folder} do not decode ({shown}; all listed in "
                           f"{listing}); replace or delete them, or set data.skip_unreadable: true to go on "
                           f"without them")
    warnings.warn(f"{len(bad)} images of {title} at {folder} do not decode and are left out "
                  f"(data.skip_unreadable; listed in {listing})", stacklevel=2)
    left_out = set(bad)
    return {split: [s for s in samples if s.path not in left_out] for split, samples in splits.items()}, bad


def unreadable(paths: list[str], folder: str) -> list[str]:
    """Those of `paths` (images under `folder`) that are missing or do not decode fully. Only good
    verdicts are cached: the few bad files are decoded again, in case they were mended."""
    cache = cache_dir() / "images" / f"{_key(folder)}.json"
    known = _read_json(cache)
    stamps = {p: _stamp(p) for p in paths}
    todo = [p for p in paths if stamps[p] is None or known.get(os.path.abspath(p)) != stamps[p]]
    with ThreadPoolExecutor(min(THREADS, os.cpu_count() or 1)) as pool:
        verdicts = list(tqdm(pool.map(decodes, todo), total=len(todo), desc="checking images",
                             disable=len(todo) < 1000, mininterval=2.0, leave=False))
    good = {os.path.abspath(p): stamps[p] for p, ok in zip(todo, verdicts) if ok}
    if good:
        _write_json(cache, {**known, **good})
    return [p for p, ok in zip(todo, verdicts) if not ok]


def decodes(path: str) -> bool:
    try:
        read_image(path)  # the whole image, as training reads it: a truncated JPEG fails here
    except ImageReadError:
        return False
    return True


def write_listing(bad: list[str], folder: str) -> Path:
    """The file naming every bad image (one absolute path a line), in the cache folder."""
    path = cache_dir() / "unreadable" / f"{Path(folder).name}-{_key(folder)}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(os.path.abspath(p) + "\n" for p in bad))
    return path


def _key(folder: str) -> str:
    return hashlib.sha256(os.path.abspath(folder).encode()).hexdigest()[:16]


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # no cache yet, or a damaged one: everything is decoded again
        return {}


def _write_json(path: Path, data: dict) -> None:
    """Atomically (processes of one run check the same folder at once); a cache that cannot be
    written only costs the next load its decoding."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        os.unlink(tmp)
