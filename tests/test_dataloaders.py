"""The loaders' worker processes: the config's data.workers, at most one per core the process may use."""
import os
import warnings

import pytest
from PIL import Image

from configs.loader import load_config
from reid_data import ImageDataset, Sample, dataloaders


@pytest.fixture
def samples(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(4)]
    for i, path in enumerate(paths):
        Image.new("RGB", (8, 16), (60 * i, 0, 0)).save(path)
    return [Sample(str(path), pid=i % 2, camid=0) for i, path in enumerate(paths)]


@pytest.mark.parametrize("cores, workers, expected", [(2, 4, 2), (16, 4, 4), (2, 0, 0), (1, 2, 1)])
def test_workers_are_capped_at_the_cores_this_process_may_use(monkeypatch, samples, cores, workers, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    data = load_config(None, ["data.height=16", "data.width=8", "data.batch_size=2",
                              f"data.workers={workers}", "data.test_batch_size=2"]).data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns of more workers than cores when it builds and iterates
        train = dataloaders.train_loader(ImageDataset(samples, data.height, data.width), data, seed=0)
        test = dataloaders.test_loader(samples, data)
        assert len(next(iter(test))["image"]) == 2
    assert train.num_workers == test.num_workers == expected


def test_without_an_affinity_the_core_count_caps_the_workers(monkeypatch, samples):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    data = load_config(None, ["data.workers=4"]).data
    assert dataloaders.test_loader(samples, data).num_workers == 3
