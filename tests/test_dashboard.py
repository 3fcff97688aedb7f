"""The dashboard, for real: the `tensorboard` server the README names, started on a tiny run's logs
(loopback, a free port, stopped at the end), read through its HTTP API. What a user opens must
hold the losses, learning rates, evaluation and image grids under the tags the README lists."""
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from runs import run_dir
from trainers import build_trainer

TENSORBOARD = Path(sys.executable).with_name("tensorboard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, **query):
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = reply.read()
    return json.loads(body) if reply.headers.get_content_type() == "application/json" else body


@pytest.fixture
def dashboard(tiny_cfg):
    """(port, run name) of a tensorboard server over a 6-iteration teacher run's logs."""
    cfg = tiny_cfg("run.eval_every=3")
    build_trainer(cfg, run_dir(cfg)).fit()
    port = free_port()
    server = subprocess.Popen([str(TENSORBOARD), "--logdir", str(run_dir(cfg).parent), "--host", "127.0.0.1",
                               "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:  # up, and the run's events read (the first load happens in the background)
            try:
                if cfg.run.name in get(port, "/data/runs"):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tensorboard did not come up: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield port, cfg.run.name
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_dashboard_serves_losses_rates_evaluation_and_images(dashboard):
    port, run = dashboard
    deadline = time.monotonic() + 60
    while True:  # the last evaluation's events may land a reload later
        scalars = get(port, "/data/plugin/scalars/tags").get(run, {})
        if "eval/mAP" in scalars or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"train/loss", "train/id", "train/triplet", "lr/model_0", "lr/model_1", "eval/mAP", "eval/rank1",
            "eval/mINP"} <= set(scalars)
    loss = get(port, "/data/plugin/scalars/scalars", run=run, tag="train/loss")
    assert [step for _, step, _ in loss] == [1, 2, 3, 4, 5, 6]  # run.log_every=1
    mAP = get(port, "/data/plugin/scalars/scalars", run=run, tag="eval/mAP")
    assert [step for _, step, _ in mAP] == [3, 6] and all(0 <= value <= 1 for _, _, value in mAP)
    images = get(port, "/data/plugin/images/tags").get(run, {})
    assert "train/augmented_batch" in images
    shown = get(port, "/data/plugin/images/images", run=run, tag="train/augmented_batch")
    assert [entry["step"] for entry in shown] == [1, 3, 6]  # the first step and every checkpoint_every
    # each entry names its image by a query string; the image itself is a PNG
    png = get(port, "/data/plugin/images/individualImage", **dict(urllib.parse.parse_qsl(shown[0]["query"])))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_read_what_the_run_logged_and_draw_it(tiny_cfg, tmp_path):
    from PIL import Image

    from configs.errors import UserError
    from visual_tools import curves

    cfg = tiny_cfg("run.eval_every=3")
    history = build_trainer(cfg, run_dir(cfg)).fit()
    other = tiny_cfg("run.name=other", "optim.lr=0.01")
    build_trainer(other, run_dir(other)).fit()
    scalars = curves.read_scalars(run_dir(cfg))
    steps, losses = scalars["train/loss"]
    # tensorboard stores float32: each logged loss to within one float32 rounding
    assert steps == [1, 2, 3, 4, 5, 6]
    assert losses == pytest.approx([h["loss"] for h in history], rel=2 ** -24)
    assert scalars["eval/mAP"][0] == [3, 6]
    # tensorboard's debiased moving average, by hand
    a, b = 2.0, 4.0
    assert curves.smoothed([a, b], 0.5) == pytest.approx([a, (0.5 * 0.5 * a + 0.5 * b) / 0.75])
    out = curves.main([str(run_dir(cfg)), str(run_dir(other)), "--tags", "train/loss", "eval/mAP", "lr/model_0",
                       "--output", str(tmp_path / "c.png")])
    with Image.open(out) as image:
        assert image.size == (7 * 110, int(3 * 2.6 * 110))  # three panels of 7 x 2.6 inches at 110 dpi
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no tensorboard scalars in .*empty; no run logged train/nope"):
        curves.main([str(run_dir(cfg)), str(tmp_path / "empty"), "--tags", "train/nope"])
