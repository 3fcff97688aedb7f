"""The swap score against the synthetic world's truth: pairs, truths, baselines, scores, JSON keys,
the CLI and the figure (tiny world, random networks)."""
import json

import numpy as np
import pytest
import torch

from configs.loader import load_config
from models import build_reid_net
from models.dgnet import build_dgnet
from reid_data import build_dataset, denormalize, normalize
from reid_data.synthetic.ground_truth import load_ground_truth
from reid_eval.generation import swap
from reid_eval.generation.colour import reinhard_transfer
from visual_tools import figures, generation_metrics

TINY = ["data.dataset=synthetic", "data.height=64", "data.width=32", "data.workers=0", "data.test_batch_size=16",
        "model.backbone=resnet18", "model.pretrained=false", "run.device=cpu"]
TINY_DGNET = ["trainer=dgnet", "gen.dim=4", "gen.mlp_dim=16", "gen.n_res=2", "dis.dim=4", "dis.n_res=1",
              "dgnet.stripes=2"]


@pytest.fixture(scope="module")
def world(tiny_world_root):
    cfg = load_config(None, [*TINY, f"data.root={tiny_world_root}"])
    return build_dataset("synthetic", str(tiny_world_root)), load_ground_truth(tiny_world_root / "synthetic"), cfg


def test_pairs_are_seeded_and_cross_identity_cross_camera():
    pids, cams = [1, 1, 2, 2, 3, 3], [0, 1, 0, 1, 0, 1]
    pairs = swap.swap_pairs(pids, cams, 50, seed=3)
    assert pairs == swap.swap_pairs(pids, cams, 50, seed=3) != swap.swap_pairs(pids, cams, 50, seed=4)
    assert all(pids[a] != pids[s] and cams[a] != cams[s] for a, s in pairs)
    assert len({a for a, _ in pairs}) == 6                      # every image gets drawn as A
    with pytest.raises(ValueError, match="no image of another identity"):
        swap.swap_pairs([1, 2], [0, 0], 1, seed=0)


def test_truths_are_the_worlds_swaps_at_the_model_size(world):
    dataset, gt, cfg = world
    q = dataset.query
    a, s = [q[i].path for i in (0, 1)], [q[j].path for j in (2, 3)]
    truths = swap.render_truths(gt, a, s, 32, 16)
    full = gt.render_swap(a, s)
    assert truths.image.shape == (2, 3, 32, 16) and truths.upper.shape == truths.lower.shape == (2, 1, 32, 16)
    # area-averaged to half size: each pixel is the mean of a 2x2 block of the full render
    coverage = full.garments.unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2))
    assert torch.equal(truths.upper, coverage[:, 0:1] >= 0.5) and torch.equal(truths.lower, coverage[:, 1:2] >= 0.5)
    assert not (truths.upper & truths.lower).any() and truths.upper.any() and truths.lower.any()


def test_the_truth_drawn_scores_perfectly_and_copies_score_as_their_baselines(world):
    dataset, gt, cfg = world
    bench = swap.SwapBenchmark(dataset, gt, cfg.data, count=6, seed=0)
    assert bench.appearance.shape == bench.structure.shape == (6, 3, 64, 32)
    truth = normalize(bench.truths.image * 255)
    # the perfect generator (one batch of all 6 pairs): the truth of each pair
    scores, images = bench.score(lambda structure, appearance: truth, batch_size=6)
    # float32 round trip of values in [0, 1] through normalize and denormalize (*255, /255, -m, /s,
    # *s, +m): <= ~5 roundings of 2^-24 each
    assert set(scores) == set(swap.METHODS) and torch.allclose(images, bench.truths.image, rtol=0,
                                                               atol=8 * 2.0 ** -24)
    perfect = scores["model"]
    assert perfect["ssim"] > 0.999 and perfect["delta_e_upper"] < 0.1 and perfect["delta_e_lower"] < 0.1
    # a copy is the baseline's very image (denormalize's clamp again is a no-op) scored by the same
    # code on the same shapes: the scores are bit-identical
    copied, _ = bench.score(lambda structure, appearance: structure, batch_size=6)
    assert copied["model"] == copied["copy_structure"]
    copied, _ = bench.score(lambda structure, appearance: appearance, batch_size=6)
    assert copied["model"] == copied["copy_appearance"]
    # the reconstruction row draws each structure image with its own appearance: here S itself
    assert copied["model_reconstruction"] == copied["copy_structure"]
    # the baselines are what their names say
    made = swap.baselines(denormalize(bench.appearance), denormalize(bench.structure))
    assert torch.equal(made["colour_transfer"], reinhard_transfer(denormalize(bench.structure),
                                                                  denormalize(bench.appearance)))
    # swaps of different people are not their truth
    assert scores["copy_structure"]["delta_e_upper"] > 1 and scores["copy_structure"]["ssim"] < perfect["ssim"]


def test_identity_scores_count_nearest_gallery_identities():
    gallery = torch.eye(3)
    feats = torch.tensor([[1.0, 0.1, 0], [0, 1, 0.2], [0.1, 0, 1], [1, 0, 0]])
    predicted = swap.nearest_identity(torch.nn.functional.normalize(feats, dim=1), gallery, [7, 8, 9])
    assert predicted.tolist() == [7, 8, 9, 7]
    got = swap.identity_scores(predicted, a_pids=[7, 8, 1, 1], s_pids=[1, 1, 9, 1])
    assert got == {"id_appearance": 0.5, "id_structure": 0.25}


def test_cli_prints_the_table_and_writes_every_key(world, tiny_world_root, tmp_path, capsys):
    dataset, _, _ = world
    torch.manual_seed(0)
    teacher_cfg = load_config(None, [*TINY, f"data.root={tiny_world_root}", "trainer=teacher"])
    teacher = build_reid_net(teacher_cfg.model, dataset.num_train_pids)
    teacher_path = tmp_path / "teacher.pt"
    torch.save({"trainer": "teacher", "config": teacher_cfg.to_dict(), "modules": {"model": teacher.state_dict()}},
               teacher_path)
    cfg = load_config(None, [*TINY, *TINY_DGNET, f"data.root={tiny_world_root}", f"dgnet.teacher={teacher_path}"])
    net = build_dgnet(cfg, dataset.num_train_pids).eval()
    ckpt = tmp_path / "dgnet.pt"
    torch.save({"trainer": "dgnet", "config": cfg.to_dict(), "modules": {"dgnet": net.state_dict()}}, ckpt)
    out = tmp_path / "scores.json"
    results = generation_metrics.main(["--checkpoint", str(ckpt), "--metrics", "swap", "--pairs", "5",
                                       "--device", "cpu", "--output", str(out)])
    printed = capsys.readouterr().out
    assert all(m in printed for m in swap.METHODS)
    written = json.loads(out.read_text())
    keys = {f"swap.{m}.{k}" for m in swap.METHODS for k in swap.SCORES}
    assert keys <= set(written) and all(np.isfinite(written[k]) for k in keys)
    assert {k: written[k] for k in keys} == {k: results[k] for k in keys}
    for m in swap.METHODS:
        assert 0 <= written[f"swap.{m}.id_appearance"] + written[f"swap.{m}.id_structure"] <= 1
    # the figure: rows A, S, truth, the model's swap; one column per pair
    paths = figures.main(["--checkpoint", str(ckpt), "--figures", "truth", "--num", "3", "--device", "cpu",
                          "--output", str(tmp_path / "fig")])
    from PIL import Image
    assert Image.open(paths[0]).size == (3 * (32 + 2) + 2, 4 * (64 + 2) + 2)
