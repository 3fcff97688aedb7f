"""A user's own data set, no code: `data.dataset: folder`.

`data.root` holds either
- lists `train.csv`, `query.csv` and `gallery.csv`, one image a row: `path,pid,camid` (a first row
  naming these columns is a header; paths are relative to data.root or absolute), or
- split folders (`data.folders`; Market-1501's bounding_box_train, query and bounding_box_test by
  default) whose file names carry identity and camera, read by `data.pattern`: a regular
  expression with named groups `pid` and `camid`, matched from the start of each name (default:
  Market-1501's, 0002_c1s1_000451_03.jpg).
The lists are read when any of them is there (they may list the split folders' images). As in
Market-1501, pid -1 is junk and 0 a distractor; cameras are numbered 0, 1, ... in the order of their
numbers over all splits (Market's c1-c6 become 0-5, as the built-in sets number them).
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping

from .layouts import image_files, join_and
from .readable import drop_unreadable
from .records import DatasetError, ReIDDataset, Sample, check_train_split, first_few, hold_out_first

NAME = "folder"
TITLE = "folder data set"
MARKET_PATTERN = r"(?P<pid>-?\d+)_c(?P<camid>\d+)"
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
COLUMNS = ("path", "pid", "camid")
WHOLE_NUMBER = re.compile(r"-?\d+")
LISTS_HELP = "train.csv, query.csv and gallery.csv, one image a row: path,pid,camid"


def build_folder(root: str, train_split: str = "train_all", skip_unreadable: bool = False,
                 pattern: str = MARKET_PATTERN, folders: Mapping[str, str] | None = None) -> ReIDDataset:
    """The registered `folder` data set at `root`; `folders` renames some of `SPLIT_FOLDERS`.
    Every image is decoded first, as for the built-in sets (`readable`)."""
    check_train_split(train_split)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetError(f"{TITLE} not found: data.root {root} is no folder; point it at the folder "
                           f"holding the split folders or the lists {LISTS_HELP}")
    lists = {split: os.path.join(root, f"{split}.csv") for split in SPLIT_FOLDERS}
    if any(os.path.isfile(path) for path in lists.values()):
        splits = read_lists(root, lists)
    else:
        splits = read_folders(root, {**SPLIT_FOLDERS, **(folders or {})}, pattern)
    splits = number_cameras(splits)
    if train_split == "train":  # DG-Net's split, derived as for the built-in sets without a folder of it
        splits["train"] = hold_out_first(splits["train"])[0]
    splits, unreadable = drop_unreadable(splits, root, TITLE, skip_unreadable)
    return ReIDDataset.from_splits(NAME, root, splits["train"], splits["query"], splits["gallery"],
                                   unreadable=unreadable)


def read_folders(root: str, folders: Mapping[str, str], pattern: str) -> dict[str, list[Sample]]:
    """Each split's images, identity and camera number from the file names; every name that does not
    fit and every empty folder in one error."""
    rule = name_rule(pattern)
    missing = [sub for sub in folders.values() if not os.path.isdir(os.path.join(root, sub))]
    if missing:
        raise DatasetError(f"{TITLE} at {root} is incomplete: {join_and(missing)} missing; put the images in "
                           f"the split folders {join_and(folders.values())} (data.folders) or list them in "
                           f"{LISTS_HELP}")
    splits, unmatched, empty = {}, [], []
    for split, sub in folders.items():
        names = image_files(os.path.join(root, sub))
        ids = {name: ids_in(rule, name) for name in names}
        unmatched += [f"{sub}/{name}" for name in names if ids[name] is None]
        splits[split] = [Sample(os.path.join(root, sub, name), *ids[name]) for name in names
                          if ids[name] is not None]
        if not names:
            empty.append(sub)
    problems = []
    if unmatched:
        problems.append(f"{len(unmatched)} file names do not match data.pattern {pattern!r} "
                        f"({first_few(unmatched)}): rename them, or set data.pattern to a regular expression "
                        f"whose named groups pid and camid take whole numbers from the start of each name")
    refuse_malformed(root, problems, empty, "hold")
    return splits


def refuse_malformed(root: str, problems: list[str], empty: list[str], verb: str) -> None:
    """One error for everything wrong with the set: `problems`, and the `empty` folders or lists (each
    "<verb>s no images")."""
    if empty:
        problems = [*problems, f"{join_and(empty)} {verb}{'s' if len(empty) == 1 else ''} no images"]
    if problems:
        raise DatasetError(f"{TITLE} at {root} is malformed: {'; '.join(problems)}")


def name_rule(pattern: str) -> re.Pattern:
    try:
        rule = re.compile(pattern)
    except re.error as err:
        raise DatasetError(f"data.pattern {pattern!r} is no regular expression ({err})") from None
    lacking = [f"(?P<{group}>...)" for group in ("pid", "camid") if group not in rule.groupindex]
    if lacking:
        raise DatasetError(f"data.pattern {pattern!r} lacks the named group{'s' if len(lacking) > 1 else ''} "
                           f"{join_and(lacking)}; Market-1501's names are read by {MARKET_PATTERN}")
    return rule


def ids_in(rule: re.Pattern, name: str) -> tuple[int, int] | None:
    """(pid, camera number) of file `name`, or None when the rule does not read two whole numbers."""
    m = rule.match(name)
    if m is None or not all(WHOLE_NUMBER.fullmatch(m[group] or "") for group in ("pid", "camid")):
        return None
    return int(m["pid"]), int(m["camid"])


def read_lists(root: str, lists: Mapping[str, str]) -> dict[str, list[Sample]]:
    """Each split's rows; every malformed row and every empty list in one error."""
    missing = [os.path.basename(p) for p in lists.values() if not os.path.isfile(p)]
    if missing:
        raise DatasetError(f"{TITLE} at {root} is incomplete: {join_and(missing)} missing; the lists are "
                           f"{LISTS_HELP}")
    splits, bad, empty = {}, [], []
    for split, path in lists.items():
        name = os.path.basename(path)
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets start with a BOM
            rows = list(csv.reader(f))
        samples, bad_before = [], len(bad)
        for number, row in enumerate(rows, 1):
            if not any(cell.strip() for cell in row) or (
                    number == 1 and tuple(cell.strip().lower() for cell in row) == COLUMNS):
                continue  # a blank line or the header
            sample, problem = parse_row(row, root)
            if problem:
                bad.append(f"{name} row {number}: {problem}")
            else:
                samples.append(sample)
        splits[split] = samples
        if not samples and len(bad) == bad_before:
            empty.append(name)
    problems = []
    if bad:
        problems.append(f"{len(bad)} rows are malformed ({first_few(bad)}): a row is path,pid,camid, the "
                        f"path of an image file (relative to {root} or absolute) and two whole numbers")
    refuse_malformed(root, problems, empty, "list")
    return splits


def parse_row(row: list[str], root: str) -> tuple[Sample | None, str | None]:
    """(the sample, None), or (None, what is wrong with the row)."""
    if len(row) != len(COLUMNS):
        return None, f"{len(row)} fields, not {len(COLUMNS)}"
    path, pid, camid = (cell.strip() for cell in row)
    wrong = [f"{column} {value!r} is no whole number" for column, value in (("pid", pid), ("camid", camid))
             if not WHOLE_NUMBER.fullmatch(value)]
    full = os.path.join(root, path)
    if not path or not os.path.isfile(full):
        wrong.append(f"no file {path!r}")
    if wrong:
        return None, " and ".join(wrong)
    return Sample(full, int(pid), int(camid)), None


def number_cameras(splits: dict[str, list[Sample]]) -> dict[str, list[Sample]]:
    """Camera numbers as 0, 1, ... in their order over all splits."""
    numbers = sorted({s.camid for samples in splits.values() for s in samples})
    index = {number: i for i, number in enumerate(numbers)}
    return {split: [s._replace(camid=index[s.camid]) for s in samples] for split, samples in splits.items()}
