"""The on-disk layouts of the supported data sets, written as data.

A `Spec` is one data set: where its folder may sit under the data root, how to obtain it, and
the layouts it may be stored in. A layout reads a folder into splits of samples with original
ids and 0-based cameras; `Spec` finds the folder, turns layout problems into one-sentence
`DatasetError`s, checks that every image decodes (`readable`), and relabels the training ids.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Union

from .image import IMAGE_EXTENSIONS
from .readable import drop_unreadable
from .records import DatasetError, ReIDDataset, Sample, check_train_split, hold_out_first


class Malformed(Exception):
    """A layout's complaint about a folder; `Spec` adds which data set and how to fix it."""


def join_and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class NameRule:
    """How a file name encodes identity and camera."""
    pattern: re.Pattern     # groups `pid` and `cam`, matched at the start of the file name
    example: str
    cameras: tuple[int, ...] | None = None  # camera numbers in index order; None: 1, 2, ... any

    def parse(self, name: str, shown: str) -> tuple[int, int]:
        """(pid, 0-based camera) of file `name`; `shown` is how errors name the file."""
        m = self.pattern.match(name)
        if m is None:
            raise Malformed(f"file {shown} does not follow the name pattern {self.example}")
        number = int(m["cam"])
        if self.cameras is None:
            if number < 1:
                raise Malformed(f"file {shown} has camera {number}; cameras count from 1")
            return int(m["pid"]), number - 1
        if number not in self.cameras:
            raise Malformed(f"file {shown} has camera {number}, not one of {self.camera_list()}")
        return int(m["pid"]), self.cameras.index(number)

    def camera_list(self) -> str:
        c = self.cameras
        if c == tuple(range(c[0], c[0] + len(c))):
            return f"{c[0]}-{c[-1]}"
        return ", ".join(map(str, c))


MARKET_NAMES = re.compile(r"(?P<pid>-?\d+)_c(?P<cam>\d+)")    # 0002_c1s1_000451_03.jpg
MSMT_NAMES = re.compile(r"(?P<pid>\d+)_\d+_(?P<cam>\d+)_")    # 0000_000_01_0303morning_0015_0.jpg
MARKET_EXAMPLE = "0002_c1s1_000451_03.jpg"


def market_names(cameras: int | tuple[int, ...] | None, example: str = MARKET_EXAMPLE) -> NameRule:
    numbers = tuple(range(1, cameras + 1)) if isinstance(cameras, int) else cameras
    return NameRule(MARKET_NAMES, example, numbers)


def image_files(folder: str) -> list[str]:
    """Image file names in `folder`, sorted; other files (Market ships Thumbs.db) are ignored."""
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))


@dataclass(frozen=True)
class SplitFolders:
    """One folder of images per split; identity from the file name, or with `per_identity`
    from the name of the sub-folder holding the file (DG-Net's layout). Camera from the name.

    `folders` maps "train_all", "query", "gallery" (and optionally "train") to sub-folders;
    `extras` are optional splits read only when present (Market-1501's gt_bbox)."""
    title: str
    folders: dict[str, str]
    names: NameRule
    per_identity: bool = False
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(self.folders[s] for s in ("train_all", "query", "gallery"))

    def describe(self) -> str:
        kind = "per-identity folders " if self.per_identity else ""
        return kind + join_and(self.markers)

    def load(self, folder: str, train_split: str) -> dict[str, list[Sample]]:
        train = train_split if train_split in self.folders else "train_all"
        wanted = {"train": self.folders[train], "query": self.folders["query"],
                  "gallery": self.folders["gallery"]}
        wanted.update((k, v) for k, v in self.extras.items()
                      if os.path.isdir(os.path.join(folder, v)))
        splits = {split: self.read(folder, sub) for split, sub in wanted.items()}
        if train != train_split:  # no folder of its own: derive it as DG-Net's prepare does
            splits["train"] = hold_out_first(splits["train"])[0]
        return splits

    def read(self, folder: str, sub: str) -> list[Sample]:
        top = os.path.join(folder, sub)
        if not os.path.isdir(top):
            raise Malformed(f"{sub} is missing")
        if self.per_identity:
            groups = [(d.name, d.path) for d in sorted(os.scandir(top), key=lambda d: d.name)
                      if d.is_dir()]
        else:
            groups = [(None, top)]
        samples = []
        for ident, path in groups:
            if ident is not None and not re.fullmatch(r"-?\d+", ident):
                raise Malformed(f"{sub}/{ident} is not an identity folder (its name is no number)")
            for name in image_files(path):
                pid, camid = self.names.parse(name, os.path.relpath(os.path.join(path, name),
                                                                    folder))
                samples.append(Sample(os.path.join(path, name),
                                      pid if ident is None else int(ident), camid))
        if not samples:
            raise Malformed(f"{sub} holds no images")
        return samples


@dataclass(frozen=True)
class ListFiles:
    """Official list files ("relative/path label" per line) over train and test image folders
    (MSMT17); the label is the identity, the camera comes from the file name."""
    title: str
    image_dirs: dict[str, str]                           # "train"/"test" -> image folder
    lists: dict[str, tuple[tuple[str, str], ...]]        # split -> ((image dir key, list), ...)
    names: NameRule

    @property
    def markers(self) -> tuple[str, ...]:
        files = dict.fromkeys(f for pairs in self.lists.values() for _, f in pairs)
        return (*files, *self.image_dirs.values())

    def describe(self) -> str:
        files = dict.fromkeys(f for pairs in self.lists.values() for _, f in pairs)
        return f"{join_and(files)} with images under {join_and(self.image_dirs.values())}"

    def load(self, folder: str, train_split: str) -> dict[str, list[Sample]]:
        splits = {"train": train_split, "query": "query", "gallery": "gallery"}
        return {split: [s for key, list_file in self.lists[source]
                        for s in self.read(folder, self.image_dirs[key], list_file)]
                for split, source in splits.items()}

    def read(self, folder: str, image_dir: str, list_file: str) -> list[Sample]:
        samples = []
        with open(os.path.join(folder, list_file)) as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or not re.fullmatch(r"\d+", fields[1]):
                    raise Malformed(f"{list_file} line {number} is not 'relative/path label'")
                _, camid = self.names.parse(os.path.basename(fields[0]),
                                            f"{fields[0]} ({list_file} line {number})")
                samples.append(Sample(os.path.join(folder, image_dir, fields[0]),
                                      int(fields[1]), camid))
        if not samples:
            raise Malformed(f"{list_file} lists no images")
        return samples


Layout = Union[SplitFolders, ListFiles]


@dataclass(frozen=True)
class Spec:
    """A registered data set; calling it with the data root (or the data set's own folder)
    returns the loaded `ReIDDataset`."""
    name: str
    title: str
    folders: tuple[str, ...]  # where it sits under the data root (glob patterns), preferred first
    layouts: tuple[Layout, ...]
    source: str               # how to obtain it; may name the target as {folder}

    def __call__(self, root: str, train_split: str = "train_all",
                 skip_unreadable: bool = False) -> ReIDDataset:
        """Every image is decoded first: those that do not are an error listing them all, or
        with `skip_unreadable` left out (`ReIDDataset.unreadable`)."""
        check_train_split(train_split)
        folder, layout = self.locate(os.fspath(root))
        try:
            splits = layout.load(folder, train_split)
        except Malformed as problem:
            raise self.error(f"{self.title} at {folder} is malformed: {problem} "
                             f"({layout.title}: {layout.describe()})", folder) from None
        splits, unreadable = drop_unreadable(splits, folder, self.title, skip_unreadable)
        return ReIDDataset.from_splits(
            self.name, folder, splits.pop("train"), splits.pop("query"), splits.pop("gallery"),
            extras=splits, unreadable=unreadable)

    def holds(self, folder: str) -> Layout | None:
        """The first layout whose markers all exist in `folder`."""
        for layout in self.layouts:
            if all(os.path.exists(os.path.join(folder, m)) for m in layout.markers):
                return layout
        return None

    def locate(self, root: str) -> tuple[str, Layout]:
        """The folder holding this data set: `root` itself, else one of `folders` under it."""
        layout = self.holds(root)
        if layout is not None:
            return root, layout
        found, seen = [], set()
        for pattern in self.folders:
            for path in sorted(glob.glob(os.path.join(glob.escape(root), pattern))):
                if os.path.isdir(path) and os.path.realpath(path) not in seen:
                    seen.add(os.path.realpath(path))
                    found.append(path)
        complete = [(path, lay) for path in found if (lay := self.holds(path))]
        if len(complete) > 1:
            raise DatasetError(f"{self.title} was found in several folders "
                               f"({join_and(p for p, _ in complete)}); pass the one to use "
                               f"as the data root.")
        if complete:
            return complete[0]
        # A folder that is there but lacks parts: the root when it holds some of them (the user
        # pointed at it), else the first folder with the data set's name.
        partial = root if any(self.present(root, lay) for lay in self.layouts) else \
            (found[0] if found else None)
        if partial is not None:
            layout = max(self.layouts, key=lambda lay: self.present(partial, lay))
            missing = [m for m in layout.markers if not os.path.exists(os.path.join(partial, m))]
            raise self.error(f"{self.title} at {partial} is incomplete: {join_and(missing)} "
                             f"missing ({layout.title}: {layout.describe()})", partial)
        where = os.path.join(root, self.folders[0])
        expected = " or ".join(f"{lay.describe()} ({lay.title})" for lay in self.layouts)
        raise self.error(f"{self.title} not found: expected {where} holding {expected}", where)

    def present(self, folder: str, layout: Layout) -> int:
        return sum(os.path.exists(os.path.join(folder, m)) for m in layout.markers)

    def error(self, problem: str, folder: str) -> DatasetError:
        return DatasetError(f"{problem}; {self.source.format(folder=folder)}.")


def market_style(title: str, cameras, train="bounding_box_train", query="query",
                 gallery="bounding_box_test", example=MARKET_EXAMPLE, **extra) -> SplitFolders:
    return SplitFolders(title, {"train_all": train, "query": query, "gallery": gallery},
                        market_names(cameras, example), **extra)


MSMT_LISTS = {
    "train_all": (("train", "list_train.txt"), ("train", "list_val.txt")),  # customary: both
    "train": (("train", "list_train.txt"),),
    "query": (("test", "list_query.txt"),),
    "gallery": (("test", "list_gallery.txt"),),
}
MSMT_RULE = NameRule(MSMT_NAMES, "0000_000_01_0303morning_0015_0.jpg", tuple(range(1, 16)))

BUILTIN = (
    Spec("market1501", "Market-1501",
         ("market1501", "Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "Market"),
         (market_style("Market-1501 layout", 6, extras={"multi-query": "gt_bbox"}),),
         "download Market-1501-v15.09.15 from its authors' page and unpack it into {folder}"),
    Spec("dukemtmcreid", "DukeMTMC-reID",
         ("DukeMTMC-reID", "dukemtmcreid", "dukemtmc-reid/DukeMTMC-reID", "dukemtmc-reid"),
         (market_style("DukeMTMC-reID layout", 8, example="0001_c2_f0046182.jpg"),),
         "DukeMTMC-reID is withdrawn by its authors, so unpack the copy you hold into {folder}"),
    Spec("msmt17", "MSMT17",
         ("MSMT17_V1", "MSMT17_V2", "msmt17", "MSMT17", "msmt17/MSMT17_V1", "msmt17/MSMT17_V2"),
         (ListFiles("MSMT17_V1 layout", {"train": "train", "test": "test"}, MSMT_LISTS,
                    MSMT_RULE),
          ListFiles("MSMT17_V2 layout", {"train": "mask_train_v2", "test": "mask_test_v2"},
                    MSMT_LISTS, MSMT_RULE),
          market_style("converted Market-style layout", len(MSMT_RULE.cameras))),
         "request MSMT17_V1 or MSMT17_V2 from its authors (Peking University) and unpack it "
         "into {folder}"),
    Spec("personx", "PersonX",
         ("PersonX", "personx"),
         # PersonX's file names number its six cameras 3, 4, 8, 10, 11 and 12.
         (market_style("PersonX layout", (3, 4, 8, 10, 11, 12),
                       example="0001_c3s1_000451_03.jpg"),),
         "download PersonX from its authors' GitHub page (sxzrt/Instructions-of-the-PersonX-"
         "dataset) and unpack it into {folder}"),
    Spec("veri", "VeRi-776",
         ("VeRi", "VeRi-776", "veri", "veri776"),
         (market_style("VeRi-776 layout", 20, "image_train", "image_query", "image_test",
                       example="0002_c002_00030600_0.jpg"),),
         "request VeRi-776 from its authors (VeRi data set page) and unpack it into {folder}"),
    Spec("dgnet", "DG-Net per-identity data",
         ("*/pytorch", "pytorch"),
         (SplitFolders("DG-Net layout", {"train_all": "train_all", "train": "train",
                                         "query": "query", "gallery": "gallery"},
                       market_names(None), per_identity=True,
                       extras={"multi-query": "multi-query"}),),
         "create it from a raw data set with python -m reid_data.prepare --src DIR "
         "--dataset NAME"),
)
