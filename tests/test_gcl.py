"""GCL at tiny size: the view memory against hand-computed batches, stage 2 leaves the identity
encoder untouched, stage 3 trains everything and re-clusters, a resumed run equals an unbroken
one, two gloo processes stay in step, and starting points are loaded or refused clearly."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from configs.loader import ConfigError, load_config
from mesh.renders import RenderError
from runs import run_dir, run_two_gloo_processes
from runtime.checkpoint import CheckpointError, read_checkpoint, save_atomic
from trainers import build_trainer
from trainers.memories import ViewMemory


# --- the memory -------------------------------------------------------------------------------
EPS32 = torch.finfo(torch.float32).eps
# float32 InfoNCE over 4 logits <= 1 / 0.5 = 2 (3-term dot products of unit vectors): the loss
# log Σ exp - logit is 1-Lipschitz in the logits, each off by a few eps32 · 2, plus the log-sum-exp's
# own roundings (of values <= 2 + log 4); the Python reference is float64 from the same float32 vectors
NCE_TOL = 8 * EPS32 * (2 + math.log(4))
def unit(*v):
    return F.normalize(torch.tensor(v, dtype=torch.float32), dim=0)


def slow_info_nce(query, positive, negatives, temperature):
    """-log softmax of the positive among [positive, negatives], one image, plain Python."""
    logits = [float(query @ positive) / temperature] + [float(query @ n) / temperature for n in negatives]
    top = max(logits)
    return -(logits[0] - top - math.log(sum(math.exp(x - top) for x in logits)))


def test_view_memory_loss_matches_a_hand_computed_batch():
    bank = torch.stack([unit(1, 0, 0), unit(0.8, 0.6, 0), unit(0, 1, 0), unit(0, 0.6, 0.8), unit(0, 0, 1)])
    labels = torch.tensor([0, 0, 1, 1, -1])     # slot 4: an outlier, a negative for everyone
    memory = ViewMemory(bank, labels, temperature=0.5, momentum=0.2, negatives=100)
    original = torch.tensor([[2.0, 0.5, 0.0], [0.1, 1.0, 0.3]])  # not unit: the memory normalises
    view = torch.tensor([[1.0, 1.0, 0.2], [0.0, 0.4, 1.0]])
    slots = torch.tensor([0, 3])
    terms = memory.loss(original, view, slots, torch.Generator().manual_seed(0))

    # Each label has exactly one other slot (the positive), and K = 100 > the 3 slots of other labels.
    positive_of, negatives_of = {0: 1, 3: 2}, {0: [2, 3, 4], 3: [0, 1, 4]}
    q, v = F.normalize(original, dim=1), F.normalize(view, dim=1)
    expected = {"instance": [], "view": [], "original": []}
    for i, s in enumerate(slots.tolist()):
        negs = bank[negatives_of[s]]
        expected["instance"].append(slow_info_nce(v[i], bank[s], negs, 0.5))
        expected["view"].append(slow_info_nce(v[i], bank[positive_of[s]], negs, 0.5))
        expected["original"].append(slow_info_nce(q[i], bank[positive_of[s]], negs, 0.5))
    for name, values in expected.items():
        assert terms[name].item() == pytest.approx(np.mean(values), abs=NCE_TOL), name

    # centroid positives: the normalised mean of the label's slots (own slot included)
    centroid = ViewMemory(bank, labels, temperature=0.5, negatives=100, positive="centroid")
    terms = centroid.loss(original, view, slots, torch.Generator().manual_seed(0))
    centre = {0: F.normalize(bank[0] + bank[1], dim=0), 3: F.normalize(bank[2] + bank[3], dim=0)}
    view_term = [slow_info_nce(v[i], centre[s], bank[negatives_of[s]], 0.5) for i, s in enumerate(slots.tolist())]
    original_term = [slow_info_nce(q[i], centre[s], bank[negatives_of[s]], 0.5) for i, s in enumerate(slots.tolist())]
    assert terms["view"].item() == pytest.approx(np.mean(view_term), abs=NCE_TOL)
    assert terms["original"].item() == pytest.approx(np.mean(original_term), abs=NCE_TOL)
    assert terms["instance"].item() == pytest.approx(np.mean(expected["instance"]), abs=NCE_TOL)
    with pytest.raises(ValueError, match="gcl.positive"):
        ViewMemory(bank, labels, positive="mean")

    memory.update(original, slots)
    moved = F.normalize(0.2 * bank[slots] + 0.8 * q, dim=1)
    torch.testing.assert_close(memory.features[slots], moved)
    torch.testing.assert_close(memory.features[[1, 2, 4]], bank[[1, 2, 4]])


def test_view_memory_draws_positives_and_negatives_by_label():
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(40) % 5
    labels[35:] = -1
    memory = ViewMemory(torch.randn(40, 8, generator=gen), labels, negatives=20)
    slots = torch.tensor([0, 7, 13, 21, 24])
    for _ in range(20):
        positives, negatives = memory.draw(slots, gen)
        assert torch.equal(labels[positives], labels[slots]) and not (positives == slots).any()
        assert negatives.shape == (5, 20)
        assert (labels[negatives] != labels[slots, None]).all()
        assert all(len(set(row.tolist())) == 20 for row in negatives)  # without replacement
    few = ViewMemory(torch.randn(40, 8, generator=gen), labels, negatives=10_000)
    assert few.draw(slots, gen)[1].shape == (5, 40 - 7)  # K shrinks to the fewest other-label slots
    lonely = ViewMemory(torch.randn(3, 8, generator=gen), torch.tensor([0, 1, 1]))
    assert lonely.draw(torch.tensor([0]), gen)[0].tolist() == [0]  # no other slot: its own


# --- the trainer ------------------------------------------------------------------------------
@pytest.fixture
def gcl_cfg(tmp_path, tiny_world_root, tiny_renders_root):
    """ResNet-18 identity encoder (BNNeck, as the synthetic Cluster Contrast runs) and a narrow
    generator at 64x32 on the tiny world (8 training images)."""
    def make(*overrides):
        return load_config(None, [
            "trainer=gcl", "data.dataset=synthetic", f"data.root={tiny_world_root}",
            "data.height=64", "data.width=32", "data.batch_size=4", "data.instances=0",
            "data.workers=0", "data.test_batch_size=16",
            "model.backbone=resnet18", "model.last_stride=2", "model.neck=bnneck",
            "gen.dim=8", "gen.mlp_dim=16", "gen.n_res=2", "dis.dim=8", "dis.n_res=1", "dis.num_scales=2",
            f"gcl.renders={tiny_renders_root}", "gcl.negatives=5", "memory.temperature=0.04",
            "optim.lr=3.5e-4", "optim.milestones=[100]",
            "cluster.iters=2", "cluster.k1=4", "cluster.k2=2", "cluster.eps=0.5", "cluster.min_samples=2",
            "cluster.outliers=singletons",
            "run.max_iter=2", "run.log_every=1", "run.checkpoint_every=100", "run.device=cpu",
            f"run.log_dir={tmp_path / 'logs'}", "run.name=gcl", *overrides])
    return make


def quiet(trainer):
    trainer.evaluate = lambda rerank=None: {}
    return trainer


def cc_checkpoint(cfg, path, seed=3):
    """A cluster_contrast checkpoint holding a (random) identity network of cfg's shape."""
    from trainers.gcl import build_gcl
    torch.manual_seed(seed)
    reid = build_gcl(cfg).identity.reid
    save_atomic({"trainer": "cluster_contrast", "config": cfg.to_dict(), "modules": {"model": reid.state_dict()}},
                path)
    return reid.state_dict()


@pytest.mark.filterwarnings("ignore:gcl.init_from is not set")
def test_stage2_trains_the_generator_and_leaves_the_identity_encoder_alone(gcl_cfg, tmp_path):
    cfg = gcl_cfg()
    start = cc_checkpoint(cfg, tmp_path / "cc.pt")
    cfg = gcl_cfg(f"gcl.init_from={tmp_path / 'cc.pt'}")
    trainer = quiet(build_trainer(cfg, run_dir(cfg)))
    net = trainer.net
    for k, v in net.identity.reid.state_dict().items():  # loaded exactly, BN statistics included
        assert torch.equal(v, start[k]), k
    before = {k: v.clone() for k, v in net.state_dict().items()}
    history = trainer.fit()
    assert len(history) == 2
    for h in history:
        assert {"adv", "recon_x", "cycle", "code", "dis", "dis_gp"} <= set(h) and not any(k.startswith("memory") for k in h)
        assert all(math.isfinite(v) for v in h.values())
    after = net.state_dict()
    identity = [k for k in after if k.startswith("identity.")]
    assert all(torch.equal(after[k], before[k]) for k in identity)  # weights and running statistics
    assert all(p.grad is None for p in net.identity.parameters())  # no gradient was even computed
    for part in ("structure.", "decoder.", "discriminator."):
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(part) and "weight" in k), part
    grids = trainer.images()
    assert grids["train/views"].shape[1] == 3 and "test/views" in grids


@pytest.mark.filterwarnings("ignore:gcl.init_from is not set")
@pytest.mark.parametrize("memory", [[], ["gcl.positive=centroid", "gcl.view_w=0.5"]], ids=["published", "centroid"])
def test_stage3_trains_everything_with_the_memory_and_reclusters(gcl_cfg, memory):
    cfg = gcl_cfg("gcl.stage=3", "run.max_iter=3", *memory)
    trainer = quiet(build_trainer(cfg, run_dir(cfg)))
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    history = trainer.fit()
    for h in history:
        assert {"memory_instance", "memory_view", "memory_original"} <= set(h)
        assert all(math.isfinite(v) for v in h.values())
    after = trainer.net.state_dict()
    for part in ("identity.reid.backbone.", "identity.reid.head.", "structure.", "decoder.", "discriminator."):
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(part) and "weight" in k), part
    epochs = [json.loads(line) for line in (run_dir(cfg) / "clusters.jsonl").read_text().splitlines()]
    assert [(e["epoch"], e["iteration"]) for e in epochs] == [(0, 0), (1, 2)]
    # BatchNorm statistics come from the real images only: one batch per iteration, none generated
    assert after["identity.reid.backbone.stem.1.num_batches_tracked"].item() == 3
    assert after["identity.reid.head.bn.num_batches_tracked"].item() == 3
    memory = trainer.round.memory
    assert memory.features.shape == (len(trainer.train_samples), 512)
    torch.testing.assert_close(memory.features.norm(dim=1), torch.ones(len(memory.features)))


@pytest.mark.filterwarnings("ignore:gcl.init_from is not set")
def test_stage3_resumes_exactly_across_an_epoch_boundary(gcl_cfg):
    whole_cfg = gcl_cfg("gcl.stage=3", "run.max_iter=4", "run.name=whole")
    whole = quiet(build_trainer(whole_cfg, run_dir(whole_cfg)))
    whole.fit()

    first_cfg = gcl_cfg("gcl.stage=3", "run.max_iter=3", "run.name=parts")
    quiet(build_trainer(first_cfg, run_dir(first_cfg))).fit()
    rest_cfg = gcl_cfg("gcl.stage=3", "run.max_iter=4", "run.name=parts")
    rest = quiet(build_trainer(rest_cfg, run_dir(rest_cfg)))
    rest.load_checkpoint(run_dir(first_cfg) / "checkpoints" / "last.pt")
    rest.fit()
    for k, v in whole.net.state_dict().items():
        assert torch.equal(rest.net.state_dict()[k], v), k
    assert torch.equal(rest.round.memory.features, whole.round.memory.features)
    assert torch.equal(rest.round.memory.labels, whole.round.memory.labels)


def _ddp_worker(cfg):
    trainer = quiet(build_trainer(cfg, run_dir(cfg)))
    history = trainer.fit()
    return {"labels": trainer.round.memory.labels, "slots": trainer.round.memory.features,
            "parameters": {k: p.detach() for k, p in trainer.net.named_parameters()}, "history": history}


@pytest.mark.filterwarnings("ignore:gcl.init_from is not set")
def test_two_gloo_processes_cluster_identically_and_stay_in_step(gcl_cfg, tmp_path):
    single_cfg = gcl_cfg("gcl.stage=3", "run.max_iter=1", "run.name=single")
    quiet(build_trainer(single_cfg, run_dir(single_cfg))).fit()
    cfg = gcl_cfg("gcl.stage=3", "run.max_iter=3", "run.name=ddp")
    r0, r1 = run_two_gloo_processes(_ddp_worker, cfg, tmp_path)
    # each rank extracts half the images; gathered, the first clustering is the single process's
    first = [json.loads((run_dir(c) / "clusters.jsonl").read_text().splitlines()[0]) for c in (cfg, single_cfg)]
    assert first[0] == first[1]
    assert len((run_dir(cfg) / "clusters.jsonl").read_text().splitlines()) == 2  # re-clustered after 2 iterations
    assert torch.equal(r0["labels"], r1["labels"])
    torch.testing.assert_close(r0["slots"], r1["slots"])  # every rank updated every slot of the global batch
    for name, value in r0["parameters"].items():  # averaged gradients: the same steps
        torch.testing.assert_close(value, r1["parameters"][name], msg=name)
    assert r0["history"] != r1["history"]  # on different shards of the batches


@pytest.mark.filterwarnings("ignore:gcl.init_from is not set")
def test_starting_points_and_renders_are_checked(gcl_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build_trainer(gcl_cfg("gcl.init_from=nowhere.pt"), tmp_path / "a")
    teacher_like = tmp_path / "teacher.pt"
    save_atomic({"trainer": "teacher", "config": {}, "modules": {"model": {}}}, teacher_like)
    with pytest.raises(CheckpointError, match="trainer 'teacher'"):
        build_trainer(gcl_cfg(f"gcl.init_from={teacher_like}"), tmp_path / "b")
    wide = tmp_path / "wide.pt"
    cc_checkpoint(gcl_cfg("model.backbone=resnet34"), wide)
    with pytest.raises(CheckpointError, match="does not fit"):
        build_trainer(gcl_cfg(f"gcl.init_from={wide}"), tmp_path / "c")
    with pytest.raises(ConfigError, match="gcl.positive"):
        build_trainer(gcl_cfg("gcl.positive=mean"), tmp_path / "e")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RenderError, match="mesh renders of synthetic are missing"):
        build_trainer(gcl_cfg(f"gcl.renders={tmp_path / 'empty'}"), tmp_path / "d")
    assert read_checkpoint(wide)["trainer"] == "cluster_contrast"
