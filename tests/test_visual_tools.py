"""The visual tools at tiny size (toy set, 64x32, a random DG-Net): each writes what it says, and
what it writes is the model's output for the images it names."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.dgnet import build_dgnet
from reid_data import DatasetError, build_dataset, denormalize, load_resized, normalize
from reid_eval.generation import ssim
from visual_tools import common, figures, generation_metrics, synthesis, test_folder
from visual_tools.image_io import PAD

ROOT = Path(__file__).resolve().parents[1]
H, W = 64, 32
TINY_DGNET = ["trainer=dgnet", "model.backbone=resnet18", "gen.dim=4", "gen.mlp_dim=16", "gen.n_res=2",
              "dis.dim=4", "dis.n_res=1", "dgnet.stripes=2", "data.test_batch_size=8"]


@pytest.fixture
def dgnet(tiny_cfg, tmp_path):
    """(checkpoint path, config, the network in eval mode) of a randomly initialised tiny DG-Net."""
    cfg = tiny_cfg(*TINY_DGNET)
    torch.manual_seed(0)
    net = build_dgnet(cfg, num_classes=6).eval()
    path = tmp_path / "dgnet.pt"
    torch.save({"trainer": "dgnet", "config": cfg.to_dict(), "modules": {"dgnet": net.state_dict()}}, path)
    return path, cfg, net


def query_by_stem(cfg):
    return {Path(s.path).stem: s for s in build_dataset("toy", cfg.data.root).query}


def query_folder(cfg) -> str:
    return str(Path(build_dataset("toy", cfg.data.root).query[0].path).parent)


def read(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255


def swap(net, structure_paths, appearance_paths) -> torch.Tensor:
    """The model's own answer, from files read here: [0, 1] images."""
    def batch(paths):
        return normalize(torch.stack([load_resized(p, H, W) for p in paths]))
    with torch.no_grad():
        return denormalize(net.swap(batch(structure_paths), batch(appearance_paths)))


def cell(figure: torch.Tensor, row: int, col: int) -> torch.Tensor:
    y, x = PAD + row * (H + PAD), PAD + col * (W + PAD)
    return figure[:, y:y + H, x:x + W]


def close(a, b):  # PNG rounding is half a grey level
    return (a - b).abs().max().item() <= 1 / 255


def test_test_folder_draws_each_image_with_anothers_structure(dgnet, tmp_path):
    path, cfg, net = dgnet
    out = tmp_path / "generated"
    test_folder.main(["--checkpoint", str(path), "--output", str(out), "--device", "cpu"])
    query = query_by_stem(cfg)
    files = sorted((out / "by_appearance").rglob("*.png"))
    appearance, structure = zip(*(f.stem.split("+") for f in files))
    assert sorted(appearance) == sorted(query) and sorted(structure) == sorted(query)  # each once as each
    assert all(a != s for a, s in zip(appearance, structure))
    for f, s in zip(files, structure):
        assert f.parent.name == f"{query[f.stem.split('+')[0]].pid:04d}"
        twin = out / "by_structure" / f"{query[s].pid:04d}" / f.name
        assert twin.read_bytes() == f.read_bytes()
    assert len(list((out / "by_structure").rglob("*.png"))) == len(files)
    expected = swap(net, [query[s].path for s in structure], [query[a].path for a in appearance])
    assert close(torch.stack([read(f) for f in files]), expected)


def test_test_folder_never_touches_a_used_folder_and_repeats_itself(dgnet, tmp_path, capsys):
    path, cfg, _ = dgnet
    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as exit_:
        test_folder.main(["--checkpoint", str(path), "--output", str(used)])
    assert exit_.value.code == 2 and "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in used.iterdir()] == ["mine.txt"]
    # the same seed pairs the same images, from the split or from its folder given as --input
    first, again, other = tmp_path / "first", tmp_path / "again", tmp_path / "other"
    again.mkdir()  # an empty folder is fine
    test_folder.main(["--checkpoint", str(path), "--output", str(first), "--device", "cpu"])
    test_folder.main(["--checkpoint", str(path), "--output", str(again), "--input", query_folder(cfg), "--device", "cpu"])
    test_folder.main(["--checkpoint", str(path), "--output", str(other), "--seed", "1", "--device", "cpu"])

    def names(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))
    assert names(first) == names(again) != names(other)
    assert not list(tmp_path.glob(".first-*"))  # no temporary folder left
    # FID on this output
    result = generation_metrics.main(["--checkpoint", str(path), "--metrics", "fid", "--generated", str(first),
                                      "--inception", "false", "--limit", "3", "--device", "cpu",
                                      "--output", str(tmp_path / "fid.json")])
    assert result["fid"]["generated"] == 3 and result["fid"]["real"] == 3 and result["fid"]["value"] > 0


def test_figures_show_the_swaps_they_name(dgnet, tmp_path):
    path, cfg, net = dgnet
    out = tmp_path / "figures"
    written = figures.main(["--checkpoint", str(path), "--output", str(out), "--num", "3", "--steps", "3",
                            "--device", "cpu"])
    assert sorted(p.name for p in written) == ["appearance.gif", "appearance.png", "rainbow.png", "structure.gif",
                                               "structure.png", "swap.png"]
    sizes = {p.name: Image.open(p).size for p in written}
    assert sizes["swap.png"] == (4 * (W + PAD) + PAD, 4 * (H + PAD) + PAD)
    assert sizes["rainbow.png"] == (4 * (W + PAD) + PAD, 2 * (H + PAD) + PAD)
    assert sizes["appearance.png"] == sizes["structure.png"] == (4 * (W + PAD) + PAD, 3 * (H + PAD) + PAD)
    gif = Image.open(out / "appearance.gif")
    assert gif.n_frames == 4 and gif.size == (2 * (W + PAD) + PAD, H + PAD + PAD)  # 0, 1, 2, 1: forth and back

    people = [im.path for im in common.distinct_identities(common.folder_images(query_folder(cfg)), 3, seed=0)]
    grid = read(out / "swap.png")
    expected = swap(net, [people[i] for i in range(3) for _ in range(3)], people * 3)
    for i in range(3):
        assert close(cell(grid, 0, i + 1), read_input(people[i])) and close(cell(grid, i + 1, 0), read_input(people[i]))
        for j in range(3):
            assert close(cell(grid, i + 1, j + 1), expected[3 * i + j])
    # interpolations run between the first two people: their ends are swap-grid cells
    a_to_b = read(out / "appearance.png")
    assert close(cell(a_to_b, 1, 1), expected[0]) and close(cell(a_to_b, 1, 3), expected[1])
    assert close(cell(a_to_b, 2, 1), expected[3]) and close(cell(a_to_b, 2, 3), expected[4])
    s_to_t = read(out / "structure.png")
    assert close(cell(s_to_t, 1, 1), expected[0]) and close(cell(s_to_t, 1, 3), expected[3])


def read_input(path) -> torch.Tensor:
    return load_resized(path, H, W).float() / 255


def test_generation_metrics_prints_and_writes_them(dgnet, tmp_path, capsys):
    path, cfg, net = dgnet
    out = tmp_path / "metrics.json"
    result = generation_metrics.main(["--checkpoint", str(path), "--inception", "false", "--lpips-backbone", "false",
                                      "--limit", "4", "--people", "2", "--device", "cpu", "--output", str(out)])
    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert "SSIM" in printed and "FID" in printed and "LPIPS diversity" in printed
    # SSIM: of the chosen images' reconstructions, computed here
    chosen = [im.path for im in common.subset(common.folder_images(query_folder(cfg)), 4, seed=0)]
    originals = torch.stack([read_input(p) for p in chosen])
    # the same images through the same network, batched as the tool batches them or not: float32 rounding
    # of the images (~1e-7) and of SSIM's 121-term window sums moves the mean by ~1e-6
    assert result["ssim"] == {"mean": pytest.approx(ssim(swap(net, chosen, chosen), originals).mean().item(),
                                                    abs=1e-5), "images": 4}
    assert result["fid"]["generated"] == 4 and "random" in result["fid"]["inception"]
    d = result["lpips_diversity"]
    assert d["people"] == 2 and d["across_appearances"] > 0 and d["across_structures"] > 0 and "random" in d["backbone"]


def test_inputs_donors_and_choices():
    assert synthesis.donors(1, 0).tolist() == [0]
    for n in (2, 5, 9):
        donor = synthesis.donors(n, seed=3)
        assert sorted(donor.tolist()) == list(range(n)) and (donor != torch.arange(n)).all()
        seen, k = {0}, 0
        for _ in range(n - 1):  # one cycle through all
            k = int(donor[k])
            seen.add(k)
        assert seen == set(range(n)) and torch.equal(donor, synthesis.donors(n, seed=3))
    images = [common.InputImage(f"{i}.jpg", str(i % 2)) for i in range(6)]
    two = common.distinct_identities(images, 2, seed=0)
    assert {im.identity for im in two} == {"0", "1"}
    assert len(common.distinct_identities(images, 5, seed=0)) == 5
    assert common.subset(images, 0, 0) == images and len(common.subset(images, 3, 0)) == 3
    t = synthesis.lerp(torch.zeros(2), torch.ones(2), 5)
    assert torch.equal(t[:, 0], torch.tensor([0, 0.25, 0.5, 0.75, 1]))


def test_input_folder_identities(tmp_path):
    image = Image.new("RGB", (W, H))
    for name in ("0002_c1s1_000451_03.jpg", "-1_c2s1_000001_00.jpg", "odd.png", "nested/0007/x.jpg", "7/y.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    found = {Path(im.path).name: im.identity for im in common.folder_images(str(tmp_path))}
    assert found == {"0002_c1s1_000451_03.jpg": "0002", "-1_c2s1_000001_00.jpg": "-1", "odd.png": "odd",
                     "x.jpg": "nested", "y.png": "7"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        common.folder_images(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="does not exist"):
        common.folder_images(str(tmp_path / "nowhere"))


def test_scripts_report_user_errors_in_one_line(tiny_cfg, tmp_path):
    teacher = tmp_path / "teacher.pt"
    torch.save({"trainer": "teacher", "config": tiny_cfg().to_dict(), "modules": {}}, teacher)
    run = subprocess.run([sys.executable, "visual_tools/figures.py", "--checkpoint", str(teacher)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == (f"error: checkpoint {teacher} was written by trainer 'teacher'; "
                          f"the visual tools need one of a dgnet run\n")
