"""Converts a raw data set into DG-Net's per-identity layout under `<dst>/pytorch/`.

    python -m reid_data.prepare --src data/market1501 --dataset market1501 [--dst DIR] [--link]

Writes train_all/ (every training image), train/ + val/ (the first image of each identity goes
to val), query/, gallery/ and, when the source has Market-1501's gt_bbox, multi-query/, each
holding one folder per original identity. Files are copied or hard-linked; files already there
with the same content are skipped; nothing the user has is ever overwritten or deleted.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil

from tqdm import tqdm

from configs.errors import command

from .layouts import MARKET_NAMES
from .records import DatasetError, Sample, hold_out_first
from .registry import DATASETS, build_dataset


def identity_folder(pid: int) -> str:
    return f"{pid:04d}" if pid >= 0 else str(pid)  # Market's names: 0002, 0000, -1


def target_name(sample: Sample) -> str:
    """The source file name when it already says this identity's camera Market-style (which
    the DG-Net layout reads), else that prefix added in front of it."""
    name = os.path.basename(sample.path)
    m = MARKET_NAMES.match(name)
    if m and int(m["cam"]) == sample.camid + 1:
        return name
    return f"{identity_folder(sample.pid)}_c{sample.camid + 1}_{name}"


def plan(src: str, dataset: str, dst: str | None) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """The output folder and, per output split, (source file, target file) pairs."""
    data = build_dataset(dataset, src)
    out = os.path.join(dst or data.root, "pytorch")
    train_all = [s._replace(pid=data.train_ids[s.pid]) for s in data.train]  # original ids
    train, val = hold_out_first(train_all)
    splits = {"train_all": train_all, "train": train, "val": val,
              "query": data.query, "gallery": data.gallery}
    if "multi-query" in data.extras:
        splits["multi-query"] = data.extras["multi-query"]
    return out, {split: [(s.path, os.path.join(out, split, identity_folder(s.pid),
                                               target_name(s)))
                         for s in samples]
                 for split, samples in splits.items()}


def same_content(a: str, b: str) -> bool:
    return os.path.isfile(b) and (os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False))


def place(source: str, target: str, link: bool) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if link:
        os.link(source, target)  # fails rather than replace a file that appeared meanwhile
        return
    partial = target + ".partial"  # a copy cut short never sits under the final name
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def prepare(src: str, dataset: str, dst: str | None = None, link: bool = False) -> dict:
    """Writes the DG-Net layout; returns the images per output split plus `written`,
    `skipped` (already there, same content) and `output` (the pytorch/ folder). Raises
    `DatasetError` before writing anything when a target exists with different content."""
    out, pairs = plan(src, dataset, dst)
    todo, skipped = [], 0
    for source, target in (p for split in pairs.values() for p in split):
        if not os.path.lexists(target):
            todo.append((source, target))
        elif same_content(source, target):
            skipped += 1
        else:
            raise DatasetError(f"{target} already exists with other content; move it away or "
                               f"choose another --dst (prepare never overwrites files).")
    for source, target in tqdm(todo, desc=f"prepare {out}", unit="img", disable=not todo):
        try:
            place(source, target, link)
        except OSError as err:
            how = "hard-link" if link else "copy"
            raise DatasetError(f"cannot {how} {source} to {target} ({err.strerror})"
                               + ("; drop --link to copy instead." if link else ".")) from err
    counts = {split: len(p) for split, p in pairs.items()}
    return {**counts, "written": len(todo), "skipped": skipped, "output": out}


@command
def main(argv: list[str] | None = None) -> dict:
    """Converts the data set; returns (and prints) the counts and the output folder."""
    parser = argparse.ArgumentParser(
        prog="python -m reid_data.prepare",
        description="Convert a re-ID data set into DG-Net's per-identity pytorch/ layout.")
    parser.add_argument("--src", required=True,
                        help="the data root or the data set's own folder")
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--dst", help="where pytorch/ is written (default: the data set's folder)")
    parser.add_argument("--link", action="store_true", help="hard-link instead of copying")
    args = parser.parse_args(argv)
    counts = prepare(args.src, args.dataset, args.dst, args.link)
    for key, value in counts.items():
        if key != "output":
            print(f"{key:<12} {value}")
    print(f"wrote {counts['output']}")
    return counts


if __name__ == "__main__":
    main.cli()
