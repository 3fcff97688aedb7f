"""The cluster_contrast trainer at tiny size: every memory trains, pseudo-label batches are
balanced, a resumed run equals an uninterrupted one across epoch boundaries, and best-model
selection reads held-out training identities only."""
import itertools
import json
import math

import pytest
import torch

from configs.loader import load_config
from reid_eval import evaluator
from runs import run_dir, run_two_gloo_processes
from runtime.checkpoint import CheckpointError, read_checkpoint
from trainers import TrainingStopped, build_trainer, pseudo_labels
from trainers.holdout import split_identities
from trainers.hooks import Hook


@pytest.fixture
def cc_cfg(tmp_path):
    """ResNet-18 at 64x32 on the toy set (6 training identities x 8 images, 3 cameras);
    singleton outliers so that random-weight features always give enough labels for P = 4."""
    def make(*overrides):
        return load_config(None, [
            "trainer=cluster_contrast", "data.dataset=toy", f"data.root={tmp_path / 'data'}",
            "data.height=64", "data.width=32", "data.batch_size=8", "data.instances=2",
            "data.camera_aware=true", "data.workers=0", "data.test_batch_size=64", "augment.pad=4",
            "model.backbone=resnet18", "model.last_stride=2", "model.neck=bnneck",
            "optim.name=adam", "optim.lr=3.5e-4", "optim.milestones=[5]", "optim.backbone_lr_mult=1.0",
            "cluster.iters=3", "cluster.k1=6", "cluster.k2=2", "cluster.eps=0.5",
            "cluster.outliers=singletons", "cfl.patch_k=3",
            "run.max_iter=4", "run.log_every=1", "run.checkpoint_every=100", "run.device=cpu",
            f"run.log_dir={tmp_path / 'logs'}", "run.name=cc", *overrides])
    return make


def no_test_evaluation(trainer):
    trainer.evaluate = lambda rerank=None: {}  # the query/gallery evaluation at the end of fit
    return trainer


@pytest.mark.parametrize("kind", ["cm", "cm_hard", "hybrid", "hybrid_instance", "cfl"])
def test_each_memory_trains_and_reclusters(cc_cfg, kind):
    cfg = cc_cfg(f"memory.kind={kind}", f"run.name={kind}")
    trainer = no_test_evaluation(build_trainer(cfg, run_dir(cfg)))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.fit()
    assert len(history) == 4 and all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in history)
    if kind == "cfl":
        assert all({"contrast", "patch", "image"} <= set(h) for h in history)
        assert trainer.round.central["patch"].central.shape == (len(trainer.train_samples), cfg.cfl.patches, 512)
    changed = [k for k, v in trainer.model.state_dict().items() if "weight" in k and not torch.equal(v, before[k])]
    assert changed, "no weight moved"
    epochs = [json.loads(line) for line in (run_dir(cfg) / "clusters.jsonl").read_text().splitlines()]
    assert [(e["epoch"], e["iteration"]) for e in epochs] == [(0, 0), (1, 3)]  # re-clustered at the boundary
    assert trainer.round.epoch == 1 and len(trainer.round.labels) == len(trainer.train_samples)


class Recorder(Hook):
    """Records what the loop called, and when."""
    def __init__(self):
        self.calls = []

    def before_train(self, trainer):
        self.calls.append(("before_train", trainer.iteration))

    def before_epoch(self, trainer, epoch):
        self.calls.append(("before_epoch", epoch, trainer.iteration, trainer.round.epoch))

    def after_step(self, trainer, losses):
        self.calls.append(("after_step", trainer.iteration))

    def after_train(self, trainer):
        self.calls.append(("after_train", trainer.iteration))


def test_the_loop_calls_its_hooks_in_order_and_a_hook_reclusters(cc_cfg):
    """Re-clustering and held-out choice are hooks that run before the run's own; a resumed run
    enters its epoch once, with the checkpoint's clustering (the recorder comes after Recluster)."""
    def run(trainer):
        recorder = Recorder()
        own = trainer.hooks()
        trainer.hooks = lambda: [*own, recorder]
        trainer.fit()
        return recorder.calls, [type(h) for h in own]

    cfg = cc_cfg("run.max_iter=4")
    calls, kinds = run(no_test_evaluation(build_trainer(cfg, run_dir(cfg))))
    assert kinds[:2] == [pseudo_labels.Recluster, pseudo_labels.HoldoutSelection]
    assert calls == [("before_train", 0), ("before_epoch", 0, 0, 0), ("after_step", 1), ("after_step", 2),
                     ("after_step", 3), ("before_epoch", 1, 3, 1), ("after_step", 4), ("after_train", 4)]
    resumed = no_test_evaluation(build_trainer(cc_cfg("run.max_iter=6"), run_dir(cfg)))
    resumed.load_checkpoint(run_dir(cfg) / "checkpoints" / "last.pt")
    calls, _ = run(resumed)
    assert calls == [("before_train", 4), ("before_epoch", 1, 4, 1), ("after_step", 5), ("after_step", 6),
                     ("after_train", 6)]
    epochs = [json.loads(line)["iteration"] for line in (run_dir(cfg) / "clusters.jsonl").read_text().splitlines()]
    assert epochs == [0, 3]  # the resumed run did not cluster again


def test_pseudo_label_batches_balance_identities_and_cameras(cc_cfg):
    def groups(camera_aware):
        cfg = cc_cfg(f"data.camera_aware={camera_aware}", "data.batch_size=16", "data.instances=4",
                     "cluster.iters=7")
        trainer = build_trainer(cfg, run_dir(cfg))
        # Pseudo labels spanning the 3 cameras, every 5th image an outlier; set as the epoch's
        # clustering, so the stream started inside the epoch does not re-cluster.
        pids = torch.tensor([s.pid for s in trainer.train_samples])
        labels = torch.where(torch.arange(len(pids)) % 5 == 0, -1, pids)
        trainer.round.epoch, trainer.round.labels = 0, labels
        cams = [s.camid for s in trainer.train_samples]
        out = []
        for batch in itertools.islice(trainer.batches(1), 6):
            index = batch["index"]
            assert (batch["pid"] == -1).all()  # the loader hides identities
            assert (labels[index] >= 0).all()  # outliers sit the epoch out
            by_label = {lab: index[labels[index] == lab].tolist() for lab in set(labels[index].tolist())}
            assert len(by_label) == 4 and all(len(v) == 4 for v in by_label.values())  # P x K
            out += [len({cams[i] for i in members}) for members in by_label.values()]
        return out

    aware, plain = groups(True), groups(False)
    assert min(aware) == 3  # each group of 4 spans all 3 cameras of its cluster
    assert sum(aware) > sum(plain)


@pytest.mark.parametrize("kind", ["cm", "cfl"])
def test_resume_across_epoch_boundaries_equals_uninterrupted(cc_cfg, kind):
    full_cfg = cc_cfg(f"memory.kind={kind}", "run.name=full", "run.max_iter=7")
    full = no_test_evaluation(build_trainer(full_cfg, run_dir(full_cfg)))
    full_history = full.fit()

    cfg = cc_cfg(f"memory.kind={kind}", "run.name=split", "run.max_iter=4")  # stops inside epoch 1
    first = no_test_evaluation(build_trainer(cfg, run_dir(cfg))).fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    assert read_checkpoint(ckpt)["stateful"]["round"]["epoch"] == 1
    resumed = no_test_evaluation(build_trainer(cc_cfg(f"memory.kind={kind}", "run.name=split", "run.max_iter=7"),
                                               run_dir(cfg)))
    resumed.load_checkpoint(ckpt)
    second = resumed.fit()  # the rest of epoch 1 from the checkpoint's clustering, then epoch 2

    assert [h["loss"] for h in first + second] == [h["loss"] for h in full_history]
    assert torch.equal(resumed.round.labels, full.round.labels)
    for key, value in full.round.memory.state_dict().items():
        assert torch.equal(value, resumed.round.memory.state_dict()[key]), key
    final = full.model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in resumed.model.state_dict().items())


def test_best_model_selection_reads_held_out_training_identities_only(cc_cfg, monkeypatch):
    cfg = cc_cfg("cluster.holdout_ids=2", "cluster.select_every=1", "run.max_iter=6")
    trainer = no_test_evaluation(build_trainer(cfg, run_dir(cfg)))
    data = trainer.data
    held = trainer.holdout.query + trainer.holdout.gallery
    train_paths, test_paths = {s.path for s in data.train}, {s.path for s in data.query + data.gallery}
    assert {s.path for s in held} <= train_paths and not {s.path for s in held} & test_paths
    assert len({s.pid for s in held}) == 2 and not {s.pid for s in held} & {s.pid for s in trainer.train_samples}
    assert len(trainer.train_samples) + len(held) == len(data.train)

    read = {"selection": set(), "clustering": set()}
    for module, key in ((evaluator, "selection"), (pseudo_labels, "clustering")):
        original = module.test_loader
        monkeypatch.setattr(module, "test_loader", lambda samples, data_cfg, original=original, key=key:
                            read[key].update(s.path for s in samples) or original(samples, data_cfg))
    trainer.fit()
    assert read["selection"] == {s.path for s in held}  # never query/gallery
    assert read["clustering"] == {s.path for s in trainer.train_samples}  # never the held-out images
    assert not (read["selection"] | read["clustering"]) & test_paths
    selections = [json.loads(line) for line in (run_dir(cfg) / "selection.jsonl").read_text().splitlines()]
    assert [s["iteration"] for s in selections] == [3, 6] and selections[0]["best"]
    best = read_checkpoint(run_dir(cfg) / "checkpoints" / "best.pt")
    assert best["trainer"] == "cluster_contrast"
    assert trainer.round.best == max(s["holdout_mAP"] for s in selections)


def test_holdout_split_and_bad_settings(cc_cfg):
    cfg = cc_cfg("cluster.holdout_ids=2")
    trainer = build_trainer(cfg, run_dir(cfg))
    for query in trainer.holdout.query:  # one query per held-out identity and camera, matches elsewhere
        assert any(g.pid == query.pid and g.camid != query.camid for g in trainer.holdout.gallery)
    rest, held = split_identities(trainer.data.train, 0, seed=0)
    assert rest == trainer.data.train and held.query == held.gallery == []
    with pytest.raises(ValueError, match="holdout_ids"):
        split_identities(trainer.data.train, 6, seed=0)
    with pytest.raises(ValueError, match="memory.kind"):
        build_trainer(cc_cfg("memory.kind=cm_soft"), run_dir(cfg))
    too_few = build_trainer(cc_cfg("cluster.outliers=drop", "cluster.eps=0.01"), run_dir(cfg))
    with pytest.raises(TrainingStopped, match="raise cluster.eps"):
        too_few.recluster(0)


def _ddp_worker(cfg):
    trainer = no_test_evaluation(build_trainer(cfg, run_dir(cfg)))
    history = trainer.fit()
    return {"labels": trainer.round.labels, "memory": trainer.round.memory.state_dict(),
            "model": trainer.model.state_dict(), "history": history}


def test_two_gloo_processes_cluster_identically(cc_cfg, tmp_path):
    single_cfg = cc_cfg("run.name=single", "run.max_iter=3")
    single = no_test_evaluation(build_trainer(single_cfg, run_dir(single_cfg)))
    single.fit()
    cfg = cc_cfg("run.name=ddp", "run.max_iter=3")
    r0, r1 = run_two_gloo_processes(_ddp_worker, cfg, tmp_path)
    # Features gathered from both shards: the clustering of the (same) initial model is the
    # single process's, on both ranks; memories stay identical as they see the global batch.
    first = json.loads((run_dir(cfg) / "clusters.jsonl").read_text().splitlines()[0])
    assert first == json.loads((run_dir(single_cfg) / "clusters.jsonl").read_text().splitlines()[0])
    assert torch.equal(r0["labels"], r1["labels"])
    for key, value in r0["memory"].items():  # the same updates from the same gathered batch: to the bit
        assert torch.equal(value, r1["memory"][key]), key
    assert r0["history"] != r1["history"]


def test_backbone_starts_from_another_runs_checkpoint(cc_cfg):
    source_cfg = cc_cfg("run.name=source", "run.max_iter=1")
    source = no_test_evaluation(build_trainer(source_cfg, run_dir(source_cfg)))
    source.fit()
    ckpt = run_dir(source_cfg) / "checkpoints" / "last.pt"
    started = build_trainer(cc_cfg(f"cluster.init_from={ckpt}"), run_dir(source_cfg))
    theirs = source.model.backbone.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in started.model.backbone.state_dict().items())
    with pytest.raises(CheckpointError, match="same model.backbone"):
        build_trainer(cc_cfg(f"cluster.init_from={ckpt}", "model.backbone=resnet34"), run_dir(source_cfg))
