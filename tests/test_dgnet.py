"""The dgnet trainer at tiny size: every loss term, which parameters move, mixed precision, exact
resume, clear errors, and two data-parallel processes."""
import copy
import json
import itertools
import math
from pathlib import Path

import pytest
import torch

from configs.loader import ConfigError, load_config
from models.dgnet import AppearanceEncoder
from reid_data import DatasetError
from runs import fake_native_bfloat16, run_dir, run_two_gloo_processes
from runtime.checkpoint import CheckpointError, read_checkpoint
from configs.errors import UserError
from trainers import TrainingStopped, build_trainer
import trainers.base
from trainers.dgnet import clean_codes
from trainers.gan import lsgan_fake, real_terms

REPO = Path(__file__).resolve().parents[1]
ALL_TERMS = {"adv", "recon_x", "recon_xp", "id", "pid", "fine_id", "recon_id", "recon_f", "recon_s", "cycle",
             "teacher", "fine_structure", "dis", "dis_gp"}


@pytest.fixture
def dgnet_cfg(tmp_path):
    """A tiny DG-Net config on the toy set (2 identities a side) with an untrained teacher checkpoint;
    every ramped weight is on from the second iteration."""
    common = ["data.dataset=toy", f"data.root={tmp_path / 'data'}", "data.height=64", "data.width=32",
              "data.workers=0", "data.test_batch_size=64", "augment.pad=4", "run.device=cpu",
              f"run.log_dir={tmp_path / 'logs'}", "model.backbone=resnet18"]
    teacher_cfg = load_config(None, ["trainer=teacher", "run.name=teacher", *common])
    teacher = build_trainer(teacher_cfg, run_dir(teacher_cfg))
    teacher_ckpt = teacher.save_checkpoint()

    def make(*overrides):
        return load_config(None, [
            "trainer=dgnet", "run.name=dgnet", "data.batch_size=8", "run.max_iter=4", "run.log_every=1",
            "run.checkpoint_every=2", f"dgnet.teacher={teacher_ckpt}", "dgnet.warm_iter=0",
            "dgnet.warm_teacher_iter=0", "dgnet.warm_scale=0.5", "gen.dim=4", "gen.mlp_dim=16", "gen.n_res=2",
            "dis.dim=4", "dis.n_res=1", "dgnet.stripes=2", "optim.lr=0.01", *common, *overrides])
    return make


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module, prefix=""):
    after = module.state_dict()
    return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("amp", [False, True])
def test_steps_train_what_they_should(dgnet_cfg, monkeypatch, amp):
    fake_native_bfloat16(monkeypatch, True)  # run.amp trains in bfloat16 on every CPU (emulated: slower)
    cfg = dgnet_cfg(f"run.amp={str(amp).lower()}", "run.max_iter=2")
    trainer = build_trainer(cfg, run_dir(cfg))
    assert trainer.amp_dtype == (torch.bfloat16 if amp else None)
    net = trainer.net
    before, teacher_before = snapshot(net), snapshot(trainer.teacher)
    history = trainer.fit()
    assert ALL_TERMS <= set(history[-1])  # ramped terms are on by the second iteration
    assert all(math.isfinite(v) for h in history for v in h.values())
    params = dict(net.named_parameters())
    for part in ("appearance.backbone.", "appearance.head.", "appearance.fine_head.", "structure.", "decoder.",
                 "discriminator."):
        moved = changed(before, net, part) & set(params)
        assert moved == {k for k in params if k.startswith(part)}, part
    assert not changed(teacher_before, trainer.teacher)  # the teacher is frozen, BN statistics included


def test_float16_with_loss_scaling_trains_every_part(dgnet_cfg, monkeypatch):
    """CUDA's mixed precision (float16 autocast + GradScaler), run on the CPU: the reduced-precision
    paths (shared encoder pass, re-encoded codes, matmul to-RGB) train every network, finitely."""
    monkeypatch.setattr(trainers.base, "amp_dtype", lambda device: torch.float16)
    cfg = dgnet_cfg("run.amp=true", "run.max_iter=2")
    trainer = build_trainer(cfg, run_dir(cfg))
    assert trainer.scaler.is_enabled()
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)  # no overflow-skipped first steps
    before = snapshot(trainer.net)
    history = trainer.fit()
    assert ALL_TERMS <= set(history[-1]) and all(math.isfinite(v) for h in history for v in h.values())
    assert trainer.skipped_steps == 0
    params = dict(trainer.net.named_parameters())
    assert changed(before, trainer.net) >= set(params)


def test_each_optimizer_holds_only_its_networks(dgnet_cfg):
    cfg = dgnet_cfg()
    trainer = build_trainer(cfg, run_dir(cfg))
    net = trainer.net
    owned = {name: {id(p) for g in opt.param_groups for p in g["params"]} for name, opt in trainer.optimizers.items()}
    assert owned["dis"] == {id(p) for p in net.discriminator.parameters()}
    assert owned["gen"] == {id(p) for p in [*net.structure.parameters(), *net.decoder.parameters()]}
    assert owned["appearance"] == {id(p) for p in net.appearance.parameters()}
    heads = trainer.optimizers["appearance"].param_groups
    assert heads[1]["lr"] == pytest.approx(10 * heads[0]["lr"])
    assert trainer.weights(0) == {"recon_f": 0.0, "recon_s": 0.0, "cycle": 0.0, "teacher": 0.0}
    assert trainer.weights(3) == {"recon_f": 1.0, "recon_s": 1.0, "cycle": 1.5, "teacher": 1.5}
    assert cfg.dgnet.warm_scale == 0.5  # the ramp never writes to the config


def test_uninterrupted_equals_resumed(dgnet_cfg):
    full_cfg = dgnet_cfg("run.name=full")
    full = build_trainer(full_cfg, run_dir(full_cfg)).fit()
    cfg = dgnet_cfg("run.name=split", "run.max_iter=2")
    first = build_trainer(cfg, run_dir(cfg)).fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    trainer = build_trainer(dgnet_cfg("run.name=split"), run_dir(cfg))
    trainer.load_checkpoint(ckpt)
    second = trainer.fit()
    assert first + second == full  # every loss and weight, exactly, on CPU
    a = read_checkpoint(run_dir(full_cfg) / "checkpoints" / "last.pt")
    b = read_checkpoint(ckpt)
    assert set(a["modules"]) == {"dgnet"}
    assert all(torch.equal(a["modules"]["dgnet"][k], b["modules"]["dgnet"][k]) for k in a["modules"]["dgnet"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = EventAccumulator(str(run_dir(full_cfg))).Reload().Tags()
    assert {"train/recon_x", "train/w_teacher", "train/dis_gp", "lr/gen_0", "lr/appearance_1",
            "eval/mAP"} <= set(tags["scalars"])
    assert {"train/swaps", "test/swaps"} <= set(tags["images"])


def test_recomputing_the_generator_trains_the_same_to_the_bit(dgnet_cfg):
    # every recomputed stage (the appearance encoder's live and frozen passes, the decoder, the frozen
    # structure encoder's re-encoding): the same losses, weights and BN statistics
    kept_cfg = dgnet_cfg("run.name=kept", "run.max_iter=2")
    kept = build_trainer(kept_cfg, run_dir(kept_cfg))
    history = kept.fit()
    again_cfg = dgnet_cfg("run.name=again", "run.max_iter=2", "gen.recompute=true", "model.recompute=true")
    again = build_trainer(again_cfg, run_dir(again_cfg))
    assert again.fit() == history
    a, b = kept.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_step_taken_in_parts_steps_on_the_sum_of_the_parts(dgnet_cfg):
    # the discriminator's step as the trainers take it: the real half (with its gradient penalty)
    # accumulated, then the fake half's backward and the step
    cfg = dgnet_cfg()
    parts, whole, alone = (build_trainer(cfg, run_dir(cfg)) for _ in range(3))  # the same seeded weights
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(0))

    def halves(trainer):
        real, penalty = real_terms(trainer.net.discriminator, x)
        return real + penalty, lsgan_fake(trainer.net.discriminator(x.flip(3)))

    for _ in range(2):  # the second step starts from zeroed gradients, not from the first's
        a, b = halves(parts)
        parts.accumulate(a, "dis")
        parts.optimize(b, "dis")
        a, b = halves(whole)
        whole.optimize(a + b, "dis")
        params = list(alone.net.discriminator.parameters())
        a, b = halves(alone)
        each = [torch.autograd.grad(half, params, retain_graph=True) for half in (a, b)]
        # one backward of the sum differs from two only in where the two halves' gradients are added:
        # one float32 rounding of |g_a| + |g_b| per element
        for p, q, ga, gb in zip(parts.net.discriminator.parameters(), whole.net.discriminator.parameters(), *each):
            assert torch.all((p.grad - q.grad).abs() <= 2 * torch.finfo(torch.float32).eps * (ga.abs() + gb.abs()))
            assert torch.all((p.grad - (ga + gb)).abs() <= 2 * torch.finfo(torch.float32).eps * (ga.abs() + gb.abs()))
        alone.optimize(a + b, "dis")  # keeps its weights in step with the other two


def test_scaler_overflow_skips_steps_and_goes_on(dgnet_cfg):
    cfg = dgnet_cfg("run.max_iter=3")
    trainer = build_trainer(cfg, run_dir(cfg))
    # float16-like overflow on CPU: a scale so large that the scaled gradients become infinite
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 126, growth_interval=1000)
    history = trainer.fit()
    assert trainer.skipped_steps >= 1
    assert all(math.isfinite(h["loss"]) for h in history)
    assert all(torch.isfinite(p).all() for p in trainer.net.parameters())
    assert read_checkpoint(run_dir(cfg) / "checkpoints" / "last.pt")["skipped_steps"] == trainer.skipped_steps


def test_nan_stops_with_the_last_checkpoint_intact(dgnet_cfg):
    cfg = dgnet_cfg("run.max_iter=2")
    build_trainer(cfg, run_dir(cfg)).fit()
    ckpt = run_dir(cfg) / "checkpoints" / "last.pt"
    before = ckpt.read_bytes()
    trainer = build_trainer(dgnet_cfg(), run_dir(cfg))
    trainer.load_checkpoint(ckpt)
    with torch.no_grad():
        trainer.net.decoder.upsample[-1].weight.fill_(float("nan"))
    with pytest.raises(TrainingStopped, match="last checkpoint .* is intact"):
        trainer.fit()
    assert ckpt.read_bytes() == before


def test_missing_teacher_and_missing_market_are_one_sentence(dgnet_cfg, monkeypatch, tmp_path):
    with pytest.raises(CheckpointError, match=r"needs a teacher checkpoint but dgnet.teacher \(.*nowhere.pt\) "
                                              r"does not exist; train one first") as err:
        build_trainer(dgnet_cfg(f"dgnet.teacher={tmp_path / 'nowhere.pt'}"), tmp_path / "run")
    assert isinstance(err.value, UserError) and "\n" not in str(err.value)
    fp16 = load_config(REPO / "configs" / "latest-fp16.yaml", [f"data.root={tmp_path / 'empty'}", "run.device=cpu"])
    plain = load_config(REPO / "configs" / "latest.yaml", [f"data.root={tmp_path / 'empty'}", "run.device=cpu"])
    assert {**fp16.to_dict(), "run": None} == {**plain.to_dict(), "run": None}
    assert {k for k in fp16.run if fp16.run[k] != plain.run[k]} == {"amp"}
    fake_native_bfloat16(monkeypatch, True)  # no float32-fallback warning from run.amp on any CPU
    with pytest.raises(DatasetError) as err:
        build_trainer(fp16, tmp_path / "run")
    message = str(err.value)
    assert "Market-1501" in message and str(tmp_path / "empty") in message
    assert "configs/synthetic-dgnet.yaml" in message and "\n" not in message


def test_decoder_codes_are_those_of_the_unerased_images():
    torch.manual_seed(0)
    encoder = AppearanceEncoder(num_classes=3, backbone="resnet18", stripes=2).train()
    images = torch.randn(4, 3, 64, 32)
    erased = images.clone()
    erased[1, :, 10:20, 5:15] = 0
    erased[3, :, 30:40, 0:8] = 0
    codes = encoder(erased).code.detach()
    stats = snapshot(encoder)
    clean = clean_codes(encoder, images, erased, codes)
    assert torch.equal(clean[[0, 2]], codes[[0, 2]])  # erasing left them alone: their codes are kept
    twin = copy.deepcopy(encoder)  # what a plain train-mode pass over the two changed images gives
    plain = twin(images[[1, 3]]).code
    # The same pass, up to the summation order of the kernels that each call picks: float32 through 20
    # layers of up to 4.6k-term sums lands ~4e-6 of the code's scale from float64; erasing moves the
    # codes by about the code's scale itself.
    tol = 1e-4 * plain.abs().max().item()
    assert (clean[[1, 3]] - plain).abs().max() <= tol
    assert (clean[[1, 3]] - codes[[1, 3]]).abs().max() > 100 * tol
    assert not changed(stats, encoder)  # BN running statistics untouched
    assert clean_codes(encoder, images, images, codes) is codes


def test_batch_stream_shards_deal_the_one_stream():
    from reid_data import BatchStream, shuffled_batches
    epoch = lambda rng: shuffled_batches(10, 2, rng)  # noqa: E731
    whole = list(itertools.islice(iter(BatchStream(epoch, seed=3, start=2)), 8))
    shards = [list(itertools.islice(iter(BatchStream(epoch, seed=3, start=1, rank=r, world_size=2)), 4))
              for r in (0, 1)]
    assert [b for pair in zip(*shards) for b in pair] == whole


def _ddp_worker(cfg):
    trainer = build_trainer(cfg, run_dir(cfg))
    batches = trainer.batches(0)
    first = next(batches)["index"].tolist()
    del batches
    history = trainer.fit()
    return {"first_batch": first, "history": history, "state": trainer.net.state_dict()}


def test_two_gloo_processes_train_in_step(dgnet_cfg, tmp_path):
    cfg = dgnet_cfg("run.max_iter=2", "run.name=ddp")
    r0, r1 = run_two_gloo_processes(_ddp_worker, cfg, tmp_path)
    assert not set(r0["first_batch"]) & set(r1["first_batch"])  # each process its own share of the stream
    for key, value in r0["state"].items():  # identical parameters after the averaged steps: gloo hands
        if "running_" not in key and "num_batches" not in key:  # every rank the same sum, to the bit
            assert torch.equal(value, r1["state"][key]), key
    assert r0["history"] != r1["history"]  # different data, so different losses
    files = sorted(p.name for p in (run_dir(cfg) / "checkpoints").iterdir())
    assert files == ["iter_0000002.pt", "last.pt"]
    assert len(list(run_dir(cfg).glob("events.out.tfevents.*"))) == 1  # only rank 0 writes


def test_appearance_encoder_can_start_from_the_teacher(dgnet_cfg, tmp_path):
    # a teacher whose backbone differs from any fresh initialisation
    state = read_checkpoint(dgnet_cfg().dgnet.teacher)
    for key, value in state["modules"]["model"].items():
        if key.startswith("backbone.") and value.is_floating_point():
            value.add_(1.0)
    torch.save(state, tmp_path / "teacher.pt")
    cfg = dgnet_cfg(f"dgnet.teacher={tmp_path / 'teacher.pt'}", "dgnet.init_from_teacher=true")
    trainer = build_trainer(cfg, tmp_path / "run")
    mine, theirs = trainer.net.appearance.backbone.state_dict(), trainer.teacher.backbone.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    fresh = build_trainer(dgnet_cfg(f"dgnet.teacher={tmp_path / 'teacher.pt'}"), tmp_path / "run2")
    assert not torch.equal(fresh.net.appearance.backbone.stem[0].weight, theirs["stem.0.weight"])
    with pytest.raises(ConfigError, match="init_from_teacher needs the teacher's backbone"):
        build_trainer(dgnet_cfg("dgnet.init_from_teacher=true", "model.last_stride=2"), tmp_path / "run3")


def test_evaluations_score_swaps_against_the_worlds_truth(dgnet_cfg, tiny_world_root, tmp_path):
    from models import build_reid_net
    from reid_data import build_dataset
    from reid_eval.generation.swap import METHODS, SCORES
    from trainers.dgnet import swap_watch

    world = build_dataset("synthetic", str(tiny_world_root))
    teacher_cfg = load_config(None, ["trainer=teacher", "model.backbone=resnet18", "model.pretrained=false"])
    judge = build_reid_net(teacher_cfg.model, world.num_train_pids)
    judge_path = tmp_path / "judge.pt"
    torch.save({"trainer": "teacher", "config": teacher_cfg.to_dict(), "modules": {"model": judge.state_dict()}},
               judge_path)
    trainer = build_trainer(dgnet_cfg("run.max_iter=2"), tmp_path / "run")
    assert trainer._swaps is None                            # the toy set has no ground truth
    world_cfg = dgnet_cfg("data.dataset=synthetic", f"data.root={tiny_world_root}", f"dgnet.teacher={judge_path}",
                          "dgnet.swap_pairs=3")
    trainer._swaps = swap_watch(world, world_cfg, torch.device("cpu"))
    assert trainer._swaps.bench.truths.image.shape == (3, 3, 64, 32)
    trainer.fit()
    last = json.loads((tmp_path / "run" / "results.jsonl").read_text().splitlines()[-1])
    assert {f"swap.{m}.{k}" for m in METHODS for k in SCORES} <= set(last)
    grid = trainer.images()["test/truth"]
    assert grid.shape == (1, 3, 4 * (64 + 2) + 2, 3 * (32 + 2) + 2)  # rows A, S, truth, the model's swap
    assert swap_watch(world, dgnet_cfg("dgnet.swap_pairs=0"), torch.device("cpu")) is None


def test_evaluating_a_checkpoint_builds_no_trainer_optimizer_or_teacher(dgnet_cfg, monkeypatch, tmp_path):
    """reid_eval/evaluate_checkpoint.py rebuilds the network from the checkpoint alone and scores it as the run did."""
    from reid_eval import evaluate_checkpoint as evaluation
    cfg = dgnet_cfg()
    trainer = build_trainer(cfg, run_dir(cfg))
    trainer.fit()
    expected = trainer.evaluate(rerank=False)
    Path(cfg.dgnet.teacher).unlink()  # evaluating needs no teacher

    def refuse(*args, **kwargs):
        raise AssertionError("evaluation built an optimizer")
    monkeypatch.setattr(torch.optim.Optimizer, "__init__", refuse)
    monkeypatch.setattr("trainers.build_trainer", refuse)
    got = evaluation.main(["--checkpoint", str(run_dir(cfg) / "checkpoints" / "last.pt"), "--device", "cpu"])
    assert got == expected  # the same network, data and arithmetic: equal, not close
    written = json.loads((run_dir(cfg) / "checkpoints" / "last.pt.eval.json").read_text())
    assert {k: written[k] for k in expected} == expected
