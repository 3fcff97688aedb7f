"""The teacher end to end at tiny size: training, exact resume, evaluation CLI, bad input."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from configs.loader import save_config
from reid_data import ImageReadError
from runs import run_dir
from runtime.checkpoint import read_checkpoint
import train
from trainers import TrainingStopped, build_trainer

REPO = Path(__file__).resolve().parents[1]


def test_uninterrupted_equals_resumed(tiny_cfg):
    full_cfg = tiny_cfg("run.name=full", "data.workers=2")
    full = build_trainer(full_cfg, run_dir(full_cfg)).fit()
    assert len(full) == 6 and all(math.isfinite(h["loss"]) for h in full)

    cfg = tiny_cfg("run.name=split", "data.workers=2", "run.max_iter=3")
    first = build_trainer(cfg, run_dir(cfg)).fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    assert read_checkpoint(ckpt)["iteration"] == 3
    resumed_cfg = tiny_cfg("run.name=split", "data.workers=2")
    trainer = build_trainer(resumed_cfg, run_dir(resumed_cfg))
    trainer.load_checkpoint(ckpt)
    second = trainer.fit()
    assert [h["loss"] for h in first + second] == [h["loss"] for h in full]  # exactly, on CPU
    final_full = read_checkpoint(run_dir(full_cfg) / "checkpoints" / "last.pt")["modules"]["model"]
    final_split = read_checkpoint(ckpt)["modules"]["model"]
    assert all(torch.equal(final_full[k], final_split[k]) for k in final_full)


def test_checkpoint_holds_the_whole_run_state(tiny_cfg):
    cfg = tiny_cfg("run.max_iter=3")
    build_trainer(cfg, run_dir(cfg)).fit()
    files = sorted(p.name for p in (run_dir(cfg) / "checkpoints").iterdir())
    assert files == ["iter_0000003.pt", "last.pt"]
    state = read_checkpoint(run_dir(cfg) / "checkpoints" / "last.pt")
    assert set(state) >= {"iteration", "modules", "optimizers", "schedulers", "scaler", "rng", "stateful", "config"}
    assert state["schedulers"]["model"]["last_epoch"] == 3
    assert state["config"]["run"]["max_iter"] == 3
    results = [json.loads(line) for line in (run_dir(cfg) / "results.jsonl").read_text().splitlines()]
    assert results[-1]["iteration"] == 3 and 0 <= results[-1]["mAP"] <= 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir(cfg))).Reload().Tags()
    assert {"train/loss", "train/id", "train/triplet", "lr/model_0", "eval/mAP"} <= set(events["scalars"])
    assert "train/augmented_batch" in events["images"]


def test_train_cli_writes_config_and_trains(tiny_cfg, tmp_path):
    cfg = tiny_cfg("run.max_iter=2", "run.name=null", "loss.triplet_weight=0.0", "loss.label_smoothing=0.1",
                   "model.neck=bnneck", "model.pooling=gem")
    save_config(cfg, tmp_path / "mine.yaml")
    trainer = train.main(["--config", str(tmp_path / "mine.yaml")])
    out = Path(cfg.run.log_dir) / "mine"  # run named after the config file
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "last.pt").is_file()
    assert trainer.iteration == 2
    resumed = train.main(["--resume", str(out / "checkpoints" / "last.pt"), "--opts", "run.max_iter=3"])
    assert resumed.iteration == 3


def test_test_cli_evaluates_a_checkpoint(tiny_cfg):
    cfg = tiny_cfg("run.max_iter=2")
    trainer = build_trainer(cfg, run_dir(cfg))
    trainer.fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    out = subprocess.run([sys.executable, str(REPO / "reid_eval" / "evaluate_checkpoint.py"), "--checkpoint", str(ckpt),
                          "--opts", "data.workers=0"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "mAP" in out.stdout and "Rank" not in out.stderr
    written = json.loads(ckpt.with_name("last.pt.eval.json").read_text())
    assert written["rerank"] is False
    # the same weights and images in another process: features equal up to the kernels' summation order,
    # which moves no ranking unless two distances tie to float32 rounding; abs=1e-6 is above the
    # float64 averaging's order and far below one flipped rank (>= 1e-3 on this tiny gallery)
    assert written["mAP"] == pytest.approx(trainer.evaluate()["mAP"], abs=1e-6)


def test_rerank_evaluation_runs(tiny_cfg):
    cfg = tiny_cfg("run.max_iter=1")
    trainer = build_trainer(cfg, run_dir(cfg))
    results = trainer.evaluate(rerank=True)
    assert set(results) == {"mAP", "rank1", "rank5", "rank10", "mINP"}
    assert all(0 <= v <= 1 for v in results.values())


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tiny_cfg):
    cfg = tiny_cfg("run.max_iter=3")
    build_trainer(cfg, run_dir(cfg)).fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    before = ckpt.read_bytes()
    cfg = tiny_cfg("run.max_iter=6")
    trainer = build_trainer(cfg, run_dir(cfg))
    trainer.load_checkpoint(ckpt)
    with torch.no_grad():
        trainer.model.head.classifier.weight.fill_(float("nan"))  # as a diverged run would
    with pytest.raises(TrainingStopped, match="last checkpoint .* is intact"):
        trainer.fit()
    assert ckpt.read_bytes() == before


def test_missing_dataset_and_bad_image_are_clear(tiny_cfg, tmp_path):
    out = subprocess.run([sys.executable, "train.py", "--opts", *[f"{k}={v}" for k, v in [
        ("data.dataset", "market1501"), ("data.root", tmp_path / "nowhere"), ("run.log_dir", tmp_path / "l")]],
        "--config", str(REPO / "configs" / "toy-teacher.yaml")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert "nowhere" in out.stderr
    # an unreadable training image stops the run naming the file
    cfg = tiny_cfg()
    trainer = build_trainer(cfg, run_dir(cfg))
    for sample in trainer.data.train:
        Path(sample.path).write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=r"\d{4}_c\ds\d_\d{6}_\d\d\.jpg"):
        trainer.fit()


def test_misspelt_key_on_the_command_line():
    out = subprocess.run([sys.executable, "train.py", "--config", "configs/toy-teacher.yaml",
                          "--opts", "model.poolng=gem"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2
    assert "unknown config key 'model.poolng'" in out.stderr and "model.pooling" in out.stderr


def test_unreadable_images_are_one_line_before_training(tmp_path):
    from reid_data import build_dataset
    data = build_dataset("toy", str(tmp_path / "data"))
    for sample in data.train:
        Path(sample.path).write_bytes(b"garbage")
    out = subprocess.run([sys.executable, "train.py", "--config", "configs/toy-teacher.yaml", "--opts",
                          f"data.root={tmp_path / 'data'}", f"run.log_dir={tmp_path / 'logs'}", "data.workers=2"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 2
    error = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in out.stderr
    assert "48 images of Toy data set" in error[0] and "bounding_box_train/" in error[0]
    assert not (tmp_path / "logs" / "toy-teacher" / "checkpoints").exists()  # stopped before training
