import os

import pytest

from configs.loader import load_config
from reid_data.synthetic.writer import WorldConfig, write_world


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The suite's cache (image verdicts of `reid_data.readable`) in a temporary folder, not the
    user's ~/.cache; subprocesses inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def tiny_cfg(tmp_path):
    """A config for a few iterations of the teacher at 64×32 on the generated toy set."""
    def make(*overrides):
        return load_config(None, [
            "trainer=teacher", "data.dataset=toy", f"data.root={tmp_path / 'data'}",
            "data.height=64", "data.width=32", "data.batch_size=8", "data.instances=2",
            "data.workers=0", "data.test_batch_size=32", "augment.pad=4",
            "run.max_iter=6", "run.log_every=1", "run.checkpoint_every=3", "run.device=cpu",
            f"run.log_dir={tmp_path / 'logs'}", "run.name=tiny", "optim.milestones=[4]",
            "optim.warmup_iters=2", "loss.triplet_weight=1.0", *overrides])
    return make


@pytest.fixture(scope="session")
def tiny_world_root(tmp_path_factory):
    """A folder holding a 4-identity, 2-camera synthetic world at 64×32 in `synthetic/`."""
    root = tmp_path_factory.mktemp("tiny_world")
    write_world(root / "synthetic", WorldConfig(ids=4, cameras=2, height=64, width=32,
                                                min_images=4, max_images=4, seed=1),
                progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_renders_root(tiny_world_root):
    """GCL's render folders (`mesh.precompute --oracle`) of the tiny world, in `renders/`."""
    import yaml
    from mesh.precompute import main

    cfg = tiny_world_root / "renders.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"dataset": "synthetic", "root": str(tiny_world_root), "workers": 0,
                                            "test_batch_size": 16}, "run": {"device": "cpu"}}))
    out = tiny_world_root / "renders"
    if not out.exists():
        assert main(["--config", str(cfg), "--out", str(out), "--oracle"]) == 0
    return out
