"""What a loaded data set is: image samples, the three splits, and the error for bad data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from configs.errors import UserError

JUNK_PID = -1        # bad detections: kept in the gallery, the metric drops them
DISTRACTOR_PID = 0   # people outside the benchmark (Market-style layouts): plain gallery images
TRAIN_SPLITS = ("train_all", "train")
SHOWN = 3            # bad items an error names before it counts the rest


class DatasetError(UserError):
    """A data set is missing or malformed; the message says which folder and how to fix it."""


class Sample(NamedTuple):
    path: str
    pid: int
    camid: int  # 0-based


@dataclass
class ReIDDataset:
    """Train pids are labels 0..C-1 (sorted order of the original ids); query and gallery keep
    the original ids. Every list is sorted by path."""
    name: str
    root: str
    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    train_ids: list[int] = field(default_factory=list)  # original id of each train label
    extras: dict[str, list[Sample]] = field(default_factory=dict)  # e.g. Market's multi-query
    unreadable: list[str] = field(default_factory=list)  # images left out: they do not decode

    @classmethod
    def from_splits(cls, name: str, root: str, train: list[Sample], query: list[Sample],
                    gallery: list[Sample], extras: dict[str, list[Sample]] | None = None,
                    unreadable: list[str] | None = None) -> ReIDDataset:
        """Builds a data set from samples carrying original ids: relabels train, sorts all."""
        train = [s for s in train if s.pid != JUNK_PID]  # junk is no class to learn
        ids = sorted({s.pid for s in train})
        label = {pid: i for i, pid in enumerate(ids)}
        return cls(name, root,
                   train=by_path(s._replace(pid=label[s.pid]) for s in train),
                   query=by_path(query), gallery=by_path(gallery), train_ids=ids,
                   extras={k: by_path(v) for k, v in (extras or {}).items()},
                   unreadable=list(unreadable or []))

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    @property
    def num_train_cams(self) -> int:
        # Camera ids index per-camera parameters, so the count is the largest id + 1.
        return max((s.camid for s in self.train), default=-1) + 1

    def summary(self) -> str:
        lines = [f"{self.name} ({self.root})", "  split      images    ids  cams"]
        for split in ("train", "query", "gallery"):
            samples = getattr(self, split)
            lines.append(f"  {split:<8} {len(samples):>8} {len({s.pid for s in samples}):>6}"
                         f" {len({s.camid for s in samples}):>5}")
        return "\n".join(lines)


def check_train_split(train_split: str) -> None:
    if train_split not in TRAIN_SPLITS:
        raise DatasetError(f"train_split must be {' or '.join(TRAIN_SPLITS)}, not {train_split!r}.")


def first_few(items) -> str:
    """The first `SHOWN` of `items`, then "..." when there are more: for an error that counts them."""
    items = list(items)
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")


def by_path(samples) -> list[Sample]:
    return sorted(samples, key=lambda s: s.path)


def hold_out_first(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """DG-Net's train/val split: the first image (by path) of each identity is the val image."""
    seen, train, val = set(), [], []
    for s in by_path(samples):
        (train if s.pid in seen else val).append(s)
        seen.add(s.pid)
    return train, val
