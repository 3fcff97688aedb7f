"""Check a data set before training on it.

    python -m reid_data.check --config FILE [--opts KEY=VALUE ...]

Builds the config's data set as training does (every image decoded) and prints its images,
identities and cameras per split, then a warning for each thing that makes it weaker than it looks:
query images without a gallery image of their identity from another camera (the metric skips them),
files with the same content (across training and test splits they leak test images into training),
images that do not decode, and training identities with one image (no positive pair for the triplet
loss; PK batches repeat it). Exit status 0 when the set can be trained and evaluated on as
configured; otherwise one `error:` line saying why (a malformed set is that error at once).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import warnings
from collections import Counter, defaultdict

from configs.errors import command
from configs.loader import load_config

from .records import JUNK_PID, DatasetError, ReIDDataset, Sample, first_few
from .registry import dataset_from_config

SPLITS = ("train", "query", "gallery")


def unmatched_queries(data: ReIDDataset) -> list[Sample]:
    """Query images with no gallery image of their identity from another camera: the Market-1501
    protocol skips them (junk queries, pid -1, have no match by definition)."""
    cameras = defaultdict(set)
    for s in data.gallery:
        cameras[s.pid].add(s.camid)
    return [q for q in data.query if q.pid == JUNK_PID or not cameras[q.pid] - {q.camid}]


def duplicate_files(data: ReIDDataset) -> list[list[str]]:
    """Groups of image paths (of any split) whose files hold the same bytes, each in path order."""
    by_content = defaultdict(list)
    for path in sorted({s.path for split in SPLITS for s in getattr(data, split)}):
        with open(path, "rb") as f:
            by_content[hashlib.sha256(f.read()).digest()].append(path)
    return [group for group in by_content.values() if len(group) > 1]


def single_image_identities(data: ReIDDataset) -> list[int]:
    """Original ids of the training identities with one image."""
    counts = Counter(s.pid for s in data.train)
    return [data.train_ids[label] for label in sorted(counts) if counts[label] == 1]


def findings(data: ReIDDataset, data_cfg) -> tuple[list[str], list[str]]:
    """(warnings, problems): what weakens the set, and what stops it being trained or evaluated on
    with the `data` config section `data_cfg`."""
    def shown(path: str) -> str:
        return os.path.relpath(path, data.root)

    warned, problems = [], []
    unmatched = unmatched_queries(data)
    if len(unmatched) == len(data.query):
        problems.append("no query image has a gallery image of its identity from another camera, so nothing "
                        "can be evaluated")
    elif unmatched:
        ids = sorted({q.pid for q in unmatched})
        warned.append(f"query images without a gallery image of their identity from another camera (the metric "
                      f"skips them): {len(unmatched)} of {len(data.query)}, identities {first_few(map(str, ids))} "
                      f"({first_few(shown(q.path) for q in unmatched)})")
    duplicates = duplicate_files(data)
    if duplicates:
        train = {s.path for s in data.train}
        leaks = sum(any(p in train for p in group) and not all(p in train for p in group) for group in duplicates)
        leak = f"; {leaks} of these span training and test splits: test images leak into training" if leaks else ""
        warned.append(f"files with the same content as another: {sum(len(g) - 1 for g in duplicates)} "
                      f"({first_few(' = '.join(map(shown, group)) for group in duplicates)}){leak}")
    if data.unreadable:
        bad = f"images that do not decode: {len(data.unreadable)} ({first_few(map(shown, data.unreadable))})"
        if data_cfg.skip_unreadable:
            warned.append(f"{bad}; training leaves them out (data.skip_unreadable: true)")
        else:
            problems.append(f"{bad}; replace or delete them, or set data.skip_unreadable: true to go on without them")
    singles = single_image_identities(data)
    if singles:
        warned.append(f"training identities with one image only: {len(singles)} ({first_few(map(str, singles))}); "
                      f"no positive pair for the triplet loss, and PK batches repeat the image")
    if data_cfg.instances > 0 and data.num_train_pids < data_cfg.batch_size // data_cfg.instances:
        problems.append(f"a PK batch of data.batch_size {data_cfg.batch_size} with data.instances "
                        f"{data_cfg.instances} takes {data_cfg.batch_size // data_cfg.instances} training "
                        f"identities, and the set has {data.num_train_pids}")
    return warned, problems


@command
def main(argv=None) -> list[str]:
    """Prints the report; returns the warnings, or raises a `DatasetError` when the set is unusable."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="the config whose data set to check (default: defaults.yaml's)")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. data.root=DIR")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.opts)
    with warnings.catch_warnings():  # the images left out are reported below, as problem or warning
        warnings.simplefilter("ignore")
        data = dataset_from_config(cfg.data, skip_unreadable=True)
    print(data.summary())
    warned, problems = findings(data, cfg.data)
    for line in warned:
        print(f"warning: {line}")
    if problems:
        raise DatasetError(f"{data.name} at {data.root} cannot be used as configured: {'; '.join(problems)}")
    print(f"usable ({len(warned)} warnings)")
    return warned


if __name__ == "__main__":
    main.cli()
