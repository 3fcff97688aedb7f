"""synthetic_gcl.sh's step logic, with a stand-in Python that records each command: every step
runs once and in order, a finished step is skipped on the next run, a failed one stops the
pipeline and runs again next time, and a training cut short resumes from its last.pt."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["teacher", "source-teacher", "cluster-contrast", "hmr", "hmr-errors", "hmr-renders",
         "oracle-renders", "render-agreement", "stage2", "stage3", "view-metrics", "views-figure"]


@pytest.fixture
def pipeline(tmp_path):
    shutil.copy(ROOT / "synthetic_gcl.sh", tmp_path)
    fake = tmp_path / "fake-python"
    # records its arguments; fails when they contain $FAIL_ON
    fake.write_text('#!/usr/bin/env bash\necho "$*" >> "$CALLS"\n'
                    '[[ -n ${FAIL_ON:-} && "$*" == *"$FAIL_ON"* ]] && exit 3\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    def run(fail_on=""):
        calls = tmp_path / "calls.txt"
        calls.unlink(missing_ok=True)
        env = {**os.environ, "PYTHON": str(fake), "CALLS": str(calls), "FAIL_ON": fail_on}
        done = subprocess.run(["bash", str(tmp_path / "synthetic_gcl.sh")], env=env, cwd=tmp_path,
                              capture_output=True, text=True)
        lines = calls.read_text().splitlines() if calls.exists() else []
        return done, lines
    return tmp_path, run


def marks(root):
    return sorted(p.stem for p in (root / "logs/synthetic-gcl-pipeline").glob("*.done"))


def test_each_step_runs_once_in_order_then_is_skipped(pipeline):
    root, run = pipeline
    done, calls = run()
    assert done.returncode == 0, done.stderr
    assert len(calls) == len(STEPS) and marks(root) == sorted(STEPS)
    assert calls[0].startswith("train.py --config configs/synthetic-teacher.yaml")
    assert "mesh.precompute" in calls[5] and "--checkpoint logs/synthetic-hmr/checkpoints/last.pt" in calls[5]
    assert "gcl.renders=data/synthetic-hmr-renders" in calls[8]        # no oracle in the GCL runs
    assert "synthetic GCL pipeline:" in done.stdout
    done, calls = run()
    assert done.returncode == 0 and calls == []
    assert done.stdout.count("skipped") == len(STEPS)


def test_a_failed_step_stops_the_pipeline_and_runs_again_next_time(pipeline):
    root, run = pipeline
    done, calls = run(fail_on="mesh.render_agreement")
    assert done.returncode == 3
    assert len(calls) == STEPS.index("render-agreement") + 1
    assert marks(root) == sorted(STEPS[:STEPS.index("render-agreement")])
    done, calls = run()
    assert done.returncode == 0
    assert len(calls) == len(STEPS) - STEPS.index("render-agreement")
    assert "mesh.render_agreement" in calls[0]


def test_a_training_cut_short_resumes_from_its_last_checkpoint(pipeline):
    root, run = pipeline
    (root / "logs/synthetic-teacher/checkpoints").mkdir(parents=True)
    (root / "logs/synthetic-teacher/checkpoints/last.pt").write_bytes(b"")
    done, calls = run(fail_on="synthetic-cc.yaml")
    assert calls[0] == "train.py --resume logs/synthetic-teacher/checkpoints/last.pt"
    assert calls[1].startswith("train.py --config configs/synthetic-teacher.yaml --opts data.root=data/synthetic-source")
    (root / "logs/synthetic-cc/checkpoints").mkdir(parents=True)
    (root / "logs/synthetic-cc/checkpoints/last.pt").write_bytes(b"")
    done, calls = run()
    assert done.returncode == 0
    assert calls[0] == "train.py --resume logs/synthetic-cc/checkpoints/last.pt"
