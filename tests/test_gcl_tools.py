"""The GCL visual tools at tiny size (the 64x32 tiny world, its oracle renders, a random GCL):
each writes what it says, what it writes is the model's output for the images and renders it
names, and the rotation scores compare against the world's true views at own yaw + angle."""
import io
import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from configs.loader import load_config
from mesh.precompute import main as precompute
from mesh.renders import ANGLES, RenderError, angle_folder
from models.gcl import build_gcl
from reid_data import DatasetError, build_dataset, denormalize, load_resized, normalize
from reid_data.synthetic.ground_truth import load_ground_truth
from reid_eval.features import flip_embedding
from reid_eval.generation import LPIPSDistance, ssim
from reid_eval.generation.views import novel_views, rotated_view_scores, true_views, view_scores, warped_views
from runtime import checkpoint
from runtime.checkpoint import CheckpointError
from configs.errors import exit_on_user_error
from visual_tools import common, generate_views, view_metrics, views_figure
from visual_tools.image_io import PAD, format_options, to_pil

H, W = 64, 32
EPS32 = torch.finfo(torch.float32).eps
TINY_GCL = ["trainer=gcl", "data.dataset=synthetic", "data.height=64", "data.width=32", "data.workers=0",
            "data.test_batch_size=4", "model.backbone=resnet18", "gen.dim=4", "gen.mlp_dim=16", "gen.n_res=2",
            "dis.dim=4", "dis.n_res=1", "dis.num_scales=1", "gcl.stripes=4", "run.device=cpu"]


@pytest.fixture(scope="module")
def gcl(tiny_world_root, tmp_path_factory):
    """(checkpoint path, config, network in eval mode, render folder) of a random tiny GCL on the
    tiny world, with the world's oracle renders."""
    folder = tmp_path_factory.mktemp("gcl_tools")
    renders = folder / "mesh"
    config = folder / "precompute.yaml"
    config.write_text(yaml.safe_dump({"data": {"dataset": "synthetic", "root": str(tiny_world_root), "workers": 0,
                                               "test_batch_size": 16}, "run": {"device": "cpu"}}))
    assert precompute(["--config", str(config), "--out", str(renders), "--oracle"]) == 0
    cfg = load_config(None, [*TINY_GCL, f"data.root={tiny_world_root}", f"gcl.renders={renders}"])
    torch.manual_seed(0)
    net = build_gcl(cfg).eval()
    path = folder / "gcl.pt"
    checkpoint.save_atomic({"trainer": "gcl", "iteration": 0, "config": cfg.to_dict(),
                            "modules": {"gcl": net.state_dict()}}, path)
    return path, cfg, net, renders


def dataset(cfg):
    return build_dataset("synthetic", cfg.data.root)


def read(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255


def read_input(path) -> torch.Tensor:
    return load_resized(path, H, W).float() / 255


def views_of(net, renders: Path, paths, angles=ANGLES, split="test") -> torch.Tensor:
    """The model's own answer, from files read here: (B, A, 3, H, W) in [0, 1]."""
    images = normalize(torch.stack([load_resized(p, H, W) for p in paths]))
    grey = torch.stack([torch.cat([load_resized(renders / split / angle_folder(a) / Path(p).name, H, W, mode="L")
                                   for a in angles]) for p in paths])
    with torch.no_grad():
        code = net.encode_identity(images).code
        out = [net.decode(net.encode_structure(grey[:, i:i + 1].float() / 127.5 - 1), code)
               for i in range(len(angles))]
    return denormalize(torch.stack(out, 1).flatten(0, 1)).unflatten(0, (len(paths), len(angles)))


def truth_of(root, paths, angle) -> torch.Tensor:
    """The world's view of each image's person at its own yaw + `angle` degrees, in [0, 1]."""
    world = load_ground_truth(dataset_root(root))
    yaws = np.array([world.record(p)["yaw"] for p in paths]) + math.radians(angle)
    return world.render(list(paths), yaw=yaws, mode="rgb", degrade=True)[0]


def dataset_root(root) -> str:
    return build_dataset("synthetic", str(root)).root


def jpeg(images: torch.Tensor) -> torch.Tensor:
    """`images` (..., 3, H, W) through the JPEG encoding the tools use for .jpg names."""
    def one(image):
        buffer = io.BytesIO()
        to_pil(image).save(buffer, "JPEG", **format_options("view.jpg"))
        return read(buffer)
    return torch.stack([one(im) for im in images.flatten(0, -4)]).view_as(images)


def cell(figure, row, col):
    y, x = PAD + row * (H + PAD), PAD + col * (W + PAD)
    return figure[:, y:y + H, x:x + W]


def close(a, b):  # PNG rounding is half a grey level
    return (a - b).abs().max().item() <= 1 / 255


def test_load_gcl_and_its_checkpoint_check(gcl, tmp_path):
    path, cfg, net, _ = gcl
    loaded = common.load_run(path, "gcl", "cpu")
    assert not loaded.model.training and loaded.cfg.gcl.stripes == 4
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), net.state_dict().values()))
    with pytest.raises(CheckpointError, match="trainer 'gcl'; the visual tools need one of a dgnet run"):
        common.load_run(path, "dgnet", "cpu")
    other = tmp_path / "teacher.pt"
    torch.save({"trainer": "teacher", "config": cfg.to_dict(), "modules": {}}, other)
    with pytest.raises(CheckpointError, match="trainer 'teacher'; the visual tools need one of a gcl run"):
        common.load_run(other, "gcl", "cpu")


def test_rotation_figure_shows_the_generated_and_true_views(gcl, tmp_path):
    path, cfg, net, renders = gcl
    out = views_figure.main(["--checkpoint", str(path), "--count", "2", "--truth", "--device", "cpu",
                         "--output", str(tmp_path / "rotation.png")])
    figure = read(out)
    cols = 1 + len(ANGLES)
    assert figure.shape[1:] == (4 * (H + PAD) + PAD, cols * (W + PAD) + PAD)
    query = [common.InputImage(s.path, f"{s.pid:04d}") for s in dataset(cfg).query]
    people = [im.path for im in common.distinct_identities(query, 2, seed=0)]
    assert len({Path(p).name[:4] for p in people}) == 2
    generated = views_of(net, renders, people)
    for i, person in enumerate(people):
        assert close(cell(figure, 2 * i, 0), read_input(person))
        assert torch.equal(cell(figure, 2 * i + 1, 0), torch.ones(3, H, W))  # blank under the input
        for a, angle in enumerate(ANGLES):
            assert close(cell(figure, 2 * i, a + 1), generated[i, a])
            assert close(cell(figure, 2 * i + 1, a + 1), truth_of(cfg.data.root, [person], angle)[0])


def test_generate_views_writes_each_angle_under_the_input_names(gcl, tmp_path, capsys):
    path, cfg, net, renders = gcl
    out = tmp_path / "views"
    generate_views.main(["--checkpoint", str(path), "--out", str(out), "--angles", "90", "0", "--device", "cpu"])
    query = [s.path for s in dataset(cfg).query]
    names = sorted(Path(p).name for p in query)
    assert sorted(p.name for p in out.iterdir()) == ["view_0", "view_90"]
    assert sorted(p.name for p in (out / "view_0").iterdir()) == names == sorted(
        p.name for p in (out / "view_90").iterdir())
    expected = views_of(net, renders, query, angles=(90, 0))
    written = torch.stack([torch.stack([read(out / f"view_{a}" / Path(p).name) for a in (90, 0)]) for p in query])
    assert (written - jpeg(expected)).abs().max() <= 4 / 255  # JPEG files, as the input names say
    assert "wrote 8 views of 4 images" in capsys.readouterr().out
    # a folder input finds its renders by file name under the render root, and gives the same views
    again = tmp_path / "again"
    generate_views.main(["--checkpoint", str(path), "--out", str(again), "--angles", "90", "0", "--device", "cpu",
                         "--input", str(Path(query[0]).parent), "--renders", str(renders)])
    assert all((again / f"view_{a}" / n).read_bytes() == (out / f"view_{a}" / n).read_bytes()
               for a in (0, 90) for n in names)
    assert not list(tmp_path.glob(".views-*")) and not list(tmp_path.glob(".again-*"))
    with pytest.raises(SystemExit) as exit_:  # never into a used folder
        generate_views.main(["--checkpoint", str(path), "--out", str(out)])
    assert exit_.value.code == 2 and "already exists and is not empty" in capsys.readouterr().err


def test_rotation_metrics_table_json_and_input_copy(gcl, tmp_path, capsys):
    path, cfg, net, _ = gcl
    out = tmp_path / "rotation.json"
    result = view_metrics.main(["--checkpoint", str(path), "--limit", "4", "--lpips-weights", "false",
                                "--device", "cpu", "--out", str(out), "--judge", str(path)])
    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert ("| angle | SSIM generated | SSIM input | SSIM warp | LPIPS generated | LPIPS input | LPIPS warp | "
            "person SSIM generated |") in printed and "| id generated | id input | id warp |" in printed
    assert all(f"| {a}° |" in printed for a in ANGLES) and "45°-315° mean" in printed
    assert result["images"] == 4 and list(result["angles"]) == [str(a) for a in ANGLES]
    assert "random" in result["lpips_backbone"]
    # the input copy at 0°, computed here: the images against the world's view at their own yaw
    ds = dataset(cfg)
    chosen = [im.path for im in common.subset([common.InputImage(s.path, f"{s.pid:04d}")
                                               for s in ds.query + ds.gallery], 4, seed=0)]
    # the inputs as the tool holds them (normalised, then back to [0, 1]): the same per-image SSIMs,
    # averaged here in float32 (3 roundings of values <= 1) and there in float64
    inputs = denormalize(normalize(torch.stack([load_resized(p, H, W) for p in chosen])))
    own = ssim(inputs, truth_of(cfg.data.root, chosen, 0)).mean().item()
    assert result["angles"]["0"]["ssim_input"] == pytest.approx(own, abs=4 * EPS32)
    assert own > 0.8 > result["angles"]["180"]["ssim_input"]  # the image is its own-yaw view, up to JPEG
    # identity under the judge (here the GCL network itself): the inputs' nearest gallery identity, by hand
    def embedded(images):  # unit embeddings, flip-averaged as the evaluation (test.flip) does
        with torch.no_grad():
            return torch.nn.functional.normalize(flip_embedding(net.embed, images, cfg.test.flip), dim=1)
    gallery = embedded(normalize(torch.stack([load_resized(s.path, H, W) for s in ds.gallery])))
    pids = np.array([s.pid for s in ds.gallery])[(embedded(normalize(inputs * 255.0)) @ gallery.T).argmax(1).numpy()]
    own_pids = np.array([int(Path(p).name[:4]) for p in chosen])
    assert 0 <= result["angles"]["0"]["id_generated"] <= 1
    assert result["angles"]["0"]["id_input"] == pytest.approx(np.mean(pids == own_pids))
    novel = [result["angles"][str(a)]["ssim_generated"] for a in ANGLES[1:]]
    # float64 means of 7 values <= 1, fsum against sum: a few float64 ulps
    assert result["novel"]["ssim_generated"] == pytest.approx(sum(novel) / len(novel), rel=1e-14)


def test_scores_of_the_truth_and_of_copying_the_input(gcl):
    path, cfg, net, renders = gcl
    paths = [s.path for s in dataset(cfg).query[:3]]
    world = load_ground_truth(dataset_root(cfg.data.root))
    truth_views = true_views(world, paths, ANGLES, H, W)
    truth = truth_views.images
    assert truth.shape == (3, len(ANGLES), 3, H, W) and truth_views.masks.shape == (3, len(ANGLES), 1, H, W)
    assert close(truth[:, 2], truth_of(cfg.data.root, paths, 90))
    distance = LPIPSDistance(False)
    perfect = view_scores({"generated": truth}, truth_views, distance)
    # SSIM in float64 (~1e-11 here) rounded to float32: within one float32 ulp of 1
    assert torch.allclose(perfect["ssim_generated"], torch.ones(3, len(ANGLES)), rtol=0, atol=EPS32)
    assert torch.allclose(perfect["ssim_person_generated"], torch.ones(3, len(ANGLES)), rtol=0, atol=EPS32)
    assert (perfect["delta_e_person_generated"] == 0).all()  # CIEDE2000 of a colour with itself
    # identical inputs: 0, or any round-off δ between the two feature stacks squared (δ² ≪ 1e-6)
    assert perfect["lpips_generated"].abs().max() < 1e-6
    # a "generator" that copies its input scores as the input copy does
    images = normalize(torch.stack([load_resized(p, H, W) for p in paths]))
    grey = torch.zeros(3, len(ANGLES), H, W, dtype=torch.uint8)
    copies = rotated_view_scores(lambda x, r: denormalize(x).unsqueeze(1).expand(-1, r.shape[1], -1, -1, -1),
                                 [(paths[:2], images[:2], grey[:2]), (paths[2:], images[2:], grey[2:])],
                                 world, distance)
    assert copies["images"] == 3
    # the copies are the inputs' very values (denormalize of the same batch), scored by the same
    # calls on the same shapes and summed alike: bit-identical
    for scores in [*copies["angles"].values(), copies["novel"]]:
        for score in ("ssim", "lpips", "ssim_person", "delta_e_person"):
            assert scores[f"{score}_generated"] == scores[f"{score}_input"]
    # the warp at 0° is the image (its texture on its own body), better than the input copy nowhere
    # but close to it: both are the image up to the warp's per-vertex resampling of the person
    at0 = copies["angles"]["0"]
    assert at0["ssim_person_warp"] > 0.8 and abs(at0["ssim_warp"] - at0["ssim_input"]) < 0.05
    # turned half round, the warp shows mostly the grey of what the image does not see
    back = warped_views(world, paths, [180], H, W)[:, 0]
    grey_share = ((back - 0.5).abs().amax(1, keepdim=True) < 1e-6)[truth_views.masks[:, 4]].float().mean()
    assert grey_share > 0.5
    # the model's views go through unchanged
    own = rotated_view_scores(partial(novel_views, net), [(paths, images, grey)], world, distance, ANGLES)
    expected = ssim(novel_views(net, images, grey)[:, 4], truth[:, 4]).mean().item()
    # per-image SSIMs from float64 convolutions over batches of 3·A and 3 (at most an ulp apart once
    # rounded to float32), averaged in float32 here (3 roundings of values <= 1), in float64 there
    assert own["angles"]["180"]["ssim_generated"] == pytest.approx(expected, abs=4 * EPS32)


def test_user_errors_are_one_sentence(gcl, tmp_path, capsys):
    path, cfg, _, renders = gcl
    folder = tmp_path / "input"
    folder.mkdir()
    image = Path(dataset(cfg).query[0].path)
    (folder / image.name).write_bytes(image.read_bytes())
    missing = renders / "test" / "render_135" / image.name
    moved = tmp_path / "moved.jpg"
    missing.rename(moved)
    try:
        with pytest.raises(RenderError) as err:
            common.find_renders(common.folder_images(str(folder)), renders)
        assert str(missing) in str(err.value) and "python -m mesh.precompute" in str(err.value)
        with pytest.raises(SystemExit) as exit_:
            exit_on_user_error(lambda: views_figure.main(["--checkpoint", str(path), "--input", str(folder),
                                                      "--count", "1", "--device", "cpu"]))
        message = capsys.readouterr().err
        assert exit_.value.code == 2 and message.count("\n") == 1 and str(missing) in message
        with pytest.raises(RenderError, match=r"mesh renders of synthetic are missing"):  # the data set's own
            generate_views.main(["--checkpoint", str(path), "--out", str(tmp_path / "v"), "--device", "cpu"])
        assert not (tmp_path / "v").exists()
    finally:
        moved.rename(missing)
    with pytest.raises(RenderError, match="no mesh-render folder is known"):
        view_metrics.main(["--checkpoint", str(path), "--opts", "gcl.renders=null", "--device", "cpu",
                               "--lpips-weights", "false"])
    with pytest.raises(DatasetError, match="toy at .* has no ground truth"):
        view_metrics.main(["--checkpoint", str(path), "--opts", "data.dataset=toy",
                               f"data.root={tmp_path / 'data'}", "--device", "cpu", "--lpips-weights", "false"])
