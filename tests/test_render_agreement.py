"""mesh/render_agreement.py: per-angle silhouette IoU of two render folders, on hand-drawn masks
whose IoU is known, and the one-sentence refusal of folders that do not match."""
import json

import numpy as np
import pytest
from PIL import Image

from configs.errors import UserError
from mesh import render_agreement
from mesh.renders import ANGLES, angle_folder


def draw(root, angle, name, rows, grey=200):
    """A 20x10 render, black but for `rows` (a slice) drawn in `grey`, saved as the JPEG precompute writes."""
    px = np.zeros((20, 10), np.uint8)
    px[rows] = grey
    path = root / "test" / angle_folder(angle) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(px).save(path, format="JPEG", quality=95)


def test_iou_per_angle_of_known_silhouettes(tmp_path, capsys):
    truth, renders = tmp_path / "oracle", tmp_path / "hmr"
    for angle in ANGLES:
        draw(truth, angle, "a.jpg", slice(0, 10))
        draw(truth, angle, "b.jpg", slice(0, 10))
        # a: the same body; b: rows 5..15 against 0..10 -> 5 shared rows of 15 covered, 1/3;
        # at 180°, b is a darker grey still above the threshold (70, the darkest lit body)
        draw(renders, angle, "a.jpg", slice(0, 10))
        draw(renders, angle, "b.jpg", slice(5, 15), grey=70 if angle == 180 else 200)
    result = render_agreement.main(["--renders", str(renders), "--truth", str(truth),
                                    "--json", str(tmp_path / "out.json")])
    assert result["images"] == 2
    for angle in ANGLES:
        assert result[f"iou_mean_{angle}"] == pytest.approx((1 + 1 / 3) / 2)
        assert result[f"iou_median_{angle}"] == pytest.approx((1 + 1 / 3) / 2)
    assert json.loads((tmp_path / "out.json").read_text()) == result
    assert "  180  0.667  0.667" in capsys.readouterr().out


def test_faint_background_is_not_body_and_empty_masks_agree(tmp_path):
    draw(tmp_path, 0, "faint.jpg", slice(3, 6), grey=10)  # JPEG ringing on black stays about this faint
    assert not render_agreement.silhouette(tmp_path / "test" / "render" / "faint.jpg").any()
    a = np.zeros((4, 4), bool)
    assert render_agreement.silhouette_iou(a, a) == 1.0
    assert render_agreement.silhouette_iou(a, ~a) == 0.0


def test_missing_renders_are_named_in_one_sentence(tmp_path):
    truth, renders = tmp_path / "oracle", tmp_path / "hmr"
    for angle in ANGLES:
        draw(truth, angle, "a.jpg", slice(0, 10))
        draw(truth, angle, "b.jpg", slice(0, 10))
        if angle != 90:
            draw(renders, angle, "a.jpg", slice(0, 10))
            draw(renders, angle, "b.jpg", slice(0, 10))
    draw(renders, 90, "a.jpg", slice(0, 10))
    with pytest.raises(UserError) as err:
        render_agreement.agreement(renders, truth)
    message = str(err.value)
    assert "1 of" in message and "render_90" in message and "b.jpg" in message and "\n" not in message
