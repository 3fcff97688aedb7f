"""Faults a run meets and survives, each reported in one sentence with nothing lost: bad images,
signals, data errors mid-run, damaged or foreign checkpoints, a full disk, missing mesh renders
and a damaged synthetic world."""
import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mesh.renders import RenderError, RenderSet, angle_folder
from reid_data import DatasetError, Sample, build_dataset, readable
from reid_data.records import ReIDDataset
from reid_data.synthetic.ground_truth import WorldGroundTruth
from runs import run_dir
from runtime import checkpoint
from runtime.checkpoint import CheckpointError, read_checkpoint
from configs.errors import exit_on_user_error
import train
from trainers import build_trainer

REPO = Path(__file__).resolve().parents[1]


def break_images(data) -> list[str]:
    """Three training images and one query image made unreadable, as found in the wild."""
    bad = [s.path for s in data.train[:3]] + [data.query[0].path]
    whole = Path(bad[0]).read_bytes()
    Path(bad[0]).write_bytes(whole[: len(whole) // 2])  # a truncated JPEG: its header is intact
    Path(bad[1]).write_text("not an image")
    Path(bad[2]).write_bytes(b"")
    Path(bad[3]).write_bytes(whole[: len(whole) // 3])
    return bad


def files_of(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*")}


def user_error(capsys, main) -> list[str]:
    """The lines `main` writes to stderr under the command-line wrapper, which end in its one error line."""
    with pytest.raises(SystemExit) as exit_:
        exit_on_user_error(main)
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and not any("Traceback" in line for line in err)
    assert err[-1].startswith("error: ") and sum(line.startswith("error: ") for line in err) == 1
    return err


# --- bad images: found together before training ---------------------------------------------------

def test_bad_images_are_listed_together_before_training(tiny_cfg, capsys):
    cfg = tiny_cfg()
    bad = break_images(build_dataset("toy", cfg.data.root))
    before = files_of(cfg.data.root)
    line = user_error(capsys, lambda: build_trainer(cfg, run_dir(cfg)))[-1]
    assert "4 images of Toy data set" in line and "data.skip_unreadable: true" in line
    assert all(os.path.basename(p) in line for p in sorted(bad)[:readable.SHOWN])
    listing = Path(re.search(r"all listed in (\S+)\);", line)[1])
    assert sorted(listing.read_text().split()) == sorted(os.path.abspath(p) for p in bad)
    assert files_of(cfg.data.root) == before  # nothing written into the data folder
    assert not listing.is_relative_to(Path(cfg.data.root).resolve())


def test_skip_unreadable_trains_without_them_and_says_so(tiny_cfg):
    cfg = tiny_cfg("data.skip_unreadable=true", "run.max_iter=1", "model.backbone=resnet18")
    bad = break_images(build_dataset("toy", cfg.data.root))
    with pytest.warns(UserWarning, match="4 images of Toy data set .* are left out"):
        trainer = build_trainer(cfg, run_dir(cfg))
    used = {s.path for s in trainer.data.train + trainer.data.query + trainer.data.gallery}
    assert not used & set(bad) and sorted(trainer.data.unreadable) == sorted(bad)
    assert trainer.data.num_train_pids == 6  # the other images of those identities are still there
    trainer.fit()
    results = [json.loads(line) for line in (run_dir(cfg) / "results.jsonl").read_text().splitlines()]
    assert results[-1]["skipped_unreadable"] == 4


def test_verdicts_are_cached_so_a_second_load_decodes_nothing(tmp_path, monkeypatch):
    data = build_dataset("toy", str(tmp_path))  # decodes every image once
    decoded = []
    real = readable.read_image
    monkeypatch.setattr(readable, "read_image", lambda path: decoded.append(path) or real(path))
    paths = sorted(s.path for s in data.train + data.query + data.gallery)
    assert readable.unreadable(paths, data.root) == [] and decoded == []
    bad = break_images(data)
    assert sorted(readable.unreadable(paths, data.root)) == sorted(bad) == sorted(decoded)  # the changed files
    decoded.clear()
    assert sorted(readable.unreadable(paths, data.root)) == sorted(bad) == sorted(decoded)  # in case they were mended
    shutil.copyfile(paths[-1], bad[0])
    assert bad[0] not in readable.unreadable(paths, data.root)
    assert any(readable.cache_dir().rglob("*.json"))


# --- stopping without losing work -----------------------------------------------------------------

STEPS = 10
TOY = str(REPO / "configs" / "toy-teacher.yaml")


def toy_opts(tmp, name, workers=0):
    return [f"data.root={tmp / 'data'}", f"run.log_dir={tmp / 'logs'}", f"run.name={name}",
            f"run.max_iter={STEPS}", "run.checkpoint_every=2", "run.threads=1", "model.backbone=resnet18",
            f"data.workers={workers}", "optim.milestones=[6]", "optim.warmup_iters=2"]


@contextlib.contextmanager
def own_threads():
    """run.threads=1 sets torch's thread count for the whole test process: give it back."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    """The final state and results of a straight run of the toy teacher."""
    tmp = tmp_path_factory.mktemp("unbroken")
    with own_threads():
        trainer = train.main(["--config", TOY, "--opts", *toy_opts(tmp, "straight")])
    return tmp, read_checkpoint(trainer.checkpoint_dir / "last.pt"), \
        (trainer.run_dir / "results.jsonl").read_text().splitlines()[-1]


@pytest.mark.parametrize("signum, to_group, workers", [(signal.SIGTERM, False, 0), (signal.SIGINT, True, 2)],
                         ids=["SIGTERM", "SIGINT-to-the-process-group-with-loader-workers"])
def test_a_signal_saves_and_the_resumed_run_equals_an_unbroken_one(unbroken, signum, to_group, workers):
    tmp, straight, straight_results = unbroken
    proc = subprocess.Popen([sys.executable, "train.py", "--config", TOY, "--opts",
                             *toy_opts(tmp, f"stopped-{workers}", workers)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True)
    checkpoints = tmp / "logs" / f"stopped-{workers}" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints / "iter_0000002.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    (os.killpg if to_group else os.kill)(proc.pid, signum)  # ^C in a terminal reaches the loader workers too
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signum, err
    last = checkpoints / "last.pt"
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(f"--resume {last}")
    stopped_at = read_checkpoint(last)["iteration"]
    assert 2 <= stopped_at < STEPS
    with own_threads():
        resumed = train.main(["--resume", str(last)])
    assert resumed.iteration == STEPS
    final = read_checkpoint(last)["modules"]["model"]
    assert all(torch.equal(final[k], straight["modules"]["model"][k]) for k in final)
    assert (resumed.run_dir / "results.jsonl").read_text().splitlines()[-1] == straight_results


def test_a_data_error_mid_run_saves_before_its_error_line(tiny_cfg, capsys):
    cfg = tiny_cfg("data.workers=2", "run.max_iter=40", "run.checkpoint_every=100", "model.backbone=resnet18")
    trainer = build_trainer(cfg, run_dir(cfg))
    step = trainer.train_step

    def step_then_break(batch):
        if trainer.iteration == 2:  # the files go bad under a running loader
            for sample in trainer.data.train:
                Path(sample.path).write_bytes(b"garbage")
        return step(batch)

    trainer.train_step = step_then_break
    err = user_error(capsys, trainer.fit)
    last = trainer.checkpoint_dir / "last.pt"
    assert 2 < trainer.iteration < 40 and read_checkpoint(last)["iteration"] == trainer.iteration
    resume = [i for i, line in enumerate(err) if line.endswith(
        f"stopped the run at iteration {trainer.iteration} of 40, saved; resume with: python train.py --resume {last}")]
    assert len(resume) == 1 and ".jpg is unreadable or corrupt" in err[-1]


# --- checkpoints: damaged, foreign, a full disk --------------------------------------------------

def test_resume_of_a_truncated_or_foreign_checkpoint_is_one_sentence(tmp_path, capsys):
    whole = tmp_path / "whole.pt"
    torch.save({"trainer": "teacher", "config": {}, "modules": {"model": {"w": torch.zeros(1000)}}}, whole)
    (tmp_path / "truncated.pt").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "torchvision.pth")  # someone else's weights
    for name, says in [("truncated.pt", "is truncated or not a checkpoint"),
                       ("text.pt", "is truncated or not a checkpoint"),
                       ("torchvision.pth", "is not a GenReID checkpoint")]:
        line = user_error(capsys, lambda: train.main(["--resume", str(tmp_path / name)]))[-1]
        assert f"{tmp_path / name}" in line and says in line


def test_a_checkpoint_of_other_networks_is_one_sentence(tiny_cfg, tmp_path):
    path = build_trainer(tiny_cfg("model.backbone=resnet34"), tmp_path / "wide").save_checkpoint()
    narrow = build_trainer(tiny_cfg("model.backbone=resnet18"), tmp_path / "narrow")
    with pytest.raises(CheckpointError, match=re.escape(f"{path} does not fit this run's networks")):
        narrow.load_checkpoint(path)


def test_a_full_disk_keeps_the_previous_checkpoint(tiny_cfg, monkeypatch):
    cfg = tiny_cfg()
    trainer = build_trainer(cfg, run_dir(cfg))
    last = trainer.save_checkpoint().with_name("last.pt")
    before = last.read_bytes()
    trainer.iteration = 1
    # Every write of the checkpoint goes to /dev/full, which fails it as a full disk does.
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: os.close(fd) or open("/dev/full", mode))
    with pytest.raises(CheckpointError) as err:
        trainer.save_checkpoint()
    monkeypatch.undo()
    assert os.strerror(errno.ENOSPC) in str(err.value) and "last.pt still holds the run" in str(err.value)
    assert sorted(p.name for p in trainer.checkpoint_dir.iterdir()) == ["iter_0000000.pt", "last.pt"]  # no temp
    assert last.read_bytes() == before and read_checkpoint(last)["iteration"] == 0


# --- mesh renders and the synthetic world's ground truth -----------------------------------------

def test_missing_renders_name_the_first_ones_and_the_count(tmp_path):
    samples = [Sample(str(tmp_path / "images" / f"{i:04d}_c1s1_000001_00.jpg"), i, 0) for i in range(8)]
    data = ReIDDataset.from_splits("fake", str(tmp_path), samples, samples[:1], samples[1:])
    for split, names in [("train", samples[:1]), ("test", samples[1:])]:  # one render of each split is there
        folder = tmp_path / "renders" / split / angle_folder(0)
        folder.mkdir(parents=True)
        (folder / os.path.basename(names[0].path)).touch()
    with pytest.raises(RenderError) as err:
        RenderSet(data, tmp_path / "renders", angles=(0,))
    message = str(err.value)
    assert message.startswith("14 mesh renders of fake are missing") and "python -m mesh.precompute" in message
    assert message.count(".jpg") == 5  # the first few, not all


@pytest.mark.parametrize("damage", ["truncated json", "json without images", "truncated npz", "no npz"])
def test_a_damaged_ground_truth_names_the_file_and_the_fix(tiny_world_root, tmp_path, damage):
    world = tmp_path / "world"
    world.mkdir()
    for name in ("ground_truth.json", "ground_truth.npz"):
        shutil.copyfile(tiny_world_root / "synthetic" / name, world / name)
    WorldGroundTruth(world)  # whole, it loads
    doc, npz = world / "ground_truth.json", world / "ground_truth.npz"
    if damage == "truncated json":
        doc.write_text(doc.read_text()[:500])
    elif damage == "json without images":
        doc.write_text(json.dumps({k: v for k, v in json.loads(doc.read_text()).items() if k != "images"}))
    elif damage == "truncated npz":
        npz.write_bytes(npz.read_bytes()[:300])
    else:
        npz.unlink()
    with pytest.raises(DatasetError) as err:
        WorldGroundTruth(world)
    message = str(err.value)
    assert message.startswith(f"{npz if 'npz' in damage else doc} is damaged")
    assert f"python -m reid_data.synthetic --out {world}" in message and "\n" not in message
