"""DG-Net swaps scored against the truth of the synthetic world, beside three baselines that learn
nothing.

A pair is (appearance image A, structure image S) of two identities seen by different cameras;
the truth is the world's render of S's structure wearing A's identity's garments
(`reid_data.synthetic.ground_truth.WorldGroundTruth.render_swap`). Each method draws one image
per pair:

  model            the generator: S's structure with A's appearance code
  model_reconstruction  the generator drawing S with S's own code: no transfer, so what the model's
                   reconstruction fidelity alone scores (the model's SSIM cannot be much above it)
  copy_structure   S unchanged
  copy_appearance  A unchanged
  colour_transfer  S with its CIELAB colour statistics moved to A's (Reinhard et al. 2001)

and is scored by SSIM to the truth, mean CIEDE2000 to the truth over the true upper- and
lower-garment pixels (`delta_e_upper`, `delta_e_lower`; lower is better), and identity: the
fraction of images whose nearest gallery image under a re-ID network (the teacher) is of A's
identity (`id_appearance`) or of S's (`id_structure`). `copy_appearance` is A itself, so its
`id_appearance` is that score's ceiling.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from reid_data import denormalize, normalize, test_loader

from ..features import extract_features, flip_embedding
from .colour import masked_mean_delta_e, reinhard_transfer
from .ssim import ssim

METHODS = ("model", "model_reconstruction", "copy_structure", "copy_appearance", "colour_transfer")
SCORES = ("ssim", "delta_e_upper", "delta_e_lower", "id_appearance", "id_structure")


def swap_pairs(pids: Sequence[int], camids: Sequence[int], count: int, seed: int) -> list[tuple[int, int]]:
    """`count` seeded pairs (a, s) of indices: different identities, different cameras."""
    pids, camids = np.asarray(pids), np.asarray(camids)
    rng = np.random.default_rng(seed)
    pairs = []
    for a in rng.integers(len(pids), size=count):
        options = np.flatnonzero((pids != pids[a]) & (camids != camids[a]))
        if len(options) == 0:
            raise ValueError(f"image {a} has no image of another identity seen by another camera")
        pairs.append((int(a), int(rng.choice(options))))
    return pairs


class SwapTruths(NamedTuple):
    image: torch.Tensor     # (N, 3, H, W) in [0, 1]
    upper: torch.Tensor     # (N, 1, H, W) bool: true upper-garment pixels
    lower: torch.Tensor     # (N, 1, H, W) bool: true lower-garment pixels


def render_truths(world, appearance_names: Sequence[str], structure_names: Sequence[str], height: int,
                  width: int, batch_size: int = 64) -> SwapTruths:
    """The world's true swaps at (height, width): images resized as the loader resizes the written
    images, garment masks where a garment covers at least half of a pixel."""
    images, upper, lower = [], [], []
    for start in range(0, len(structure_names), batch_size):
        stop = start + batch_size
        truth = world.render_swap(list(appearance_names[start:stop]), list(structure_names[start:stop]))
        image, garments = truth.image, truth.garments
        if image.shape[-2:] != (height, width):
            image = F.interpolate(image, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            garments = F.interpolate(garments, size=(height, width), mode="area")
        images.append(image.clamp(0, 1))
        upper.append(garments[:, 0:1] >= 0.5)
        lower.append(garments[:, 1:2] >= 0.5)
    return SwapTruths(torch.cat(images), torch.cat(upper), torch.cat(lower))


def baselines(appearance: torch.Tensor, structure: torch.Tensor) -> dict[str, torch.Tensor]:
    """The no-learning methods' images from A and S (both (N, 3, H, W) in [0, 1])."""
    return {"copy_structure": structure, "copy_appearance": appearance,
            "colour_transfer": reinhard_transfer(structure, appearance)}


def image_scores(images: torch.Tensor, truths: SwapTruths) -> dict[str, float]:
    """Mean SSIM and garment CIEDE2000 of `images` ([0, 1]) against the truths; a garment's mean is
    over the images that show it."""
    out = {"ssim": float(ssim(images, truths.image).mean())}
    for part in ("upper", "lower"):
        delta = masked_mean_delta_e(images, truths.image, getattr(truths, part))
        out[f"delta_e_{part}"] = float(delta.nanmean())
    return out


@torch.no_grad()
def embed_images(embed: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int,
                 flip: bool = True) -> torch.Tensor:
    """L2-normalised embeddings of normalised `images`, as `reid_eval.features.extract_features`
    makes them of a loader's batches."""
    return torch.cat([F.normalize(flip_embedding(embed, chunk, flip), dim=1).cpu()
                      for chunk in images.split(batch_size)])


def nearest_identity(features: torch.Tensor, gallery_features: torch.Tensor, gallery_pids) -> np.ndarray:
    """The identity of each feature's nearest gallery feature (cosine; all unit vectors)."""
    return np.asarray(gallery_pids)[(features @ gallery_features.T).argmax(1).numpy()]


def gallery_identifier(embed: Callable[[torch.Tensor], torch.Tensor], gallery_features: torch.Tensor, gallery_pids,
                       device: torch.device, batch_size: int, flip: bool = True) -> Callable[[torch.Tensor], np.ndarray]:
    """images (N, 3, H, W) in [0, 1] → the identity of each one's nearest gallery image under `embed`."""
    def identify(images):
        feats = embed_images(embed, normalize(images * 255.0).to(device), batch_size, flip)
        return nearest_identity(feats, gallery_features, gallery_pids)
    return identify


def identity_scores(predicted: np.ndarray, a_pids, s_pids) -> dict[str, float]:
    return {"id_appearance": float(np.mean(predicted == np.asarray(a_pids))),
            "id_structure": float(np.mean(predicted == np.asarray(s_pids)))}


def score_methods(generated: dict[str, torch.Tensor], truths: SwapTruths, identify: Callable | None,
                  a_pids, s_pids) -> dict[str, dict[str, float]]:
    """Every method's scores. `generated`: method → images (N, 3, H, W) in [0, 1]; `identify`
    maps such images to their nearest gallery identities (None: no identity scores)."""
    results = {}
    for method, images in generated.items():
        scores = image_scores(images, truths)
        if identify is not None:
            scores.update(identity_scores(identify(images), a_pids, s_pids))
        results[method] = scores
    return results


class SwapBenchmark:
    """A fixed, seeded set of pairs from a synthetic world's query split: the A and S images as the
    test loader gives them (at the data config's size), their truths and the gallery to identify by.

    ``score(draw, embed)`` scores ``draw(structure_images, appearance_images)`` (normalised batches
    → normalised images) and the baselines; ``embed`` (normalised images → embeddings, a re-ID
    network in eval mode) gives the identity scores."""

    def __init__(self, dataset, world, data_cfg, count: int = 256, seed: int = 0):
        query = dataset.query
        self.pairs = swap_pairs([s.pid for s in query], [s.camid for s in query], count, seed)
        a, s = [query[i] for i, _ in self.pairs], [query[j] for _, j in self.pairs]
        self.a_pids, self.s_pids = [x.pid for x in a], [x.pid for x in s]
        self.appearance, self.structure = _load(a, data_cfg), _load(s, data_cfg)
        self.truths = render_truths(world, [x.path for x in a], [x.path for x in s], data_cfg.height,
                                    data_cfg.width)
        self.gallery, self.data_cfg = dataset.gallery, data_cfg
        self._gallery_features = (None, None)  # (embed, its gallery embeddings)

    def gallery_features(self, embed, device: torch.device, flip: bool = True) -> torch.Tensor:
        """The gallery's embeddings under `embed` (a frozen judge), computed once while it stays the same."""
        if self._gallery_features[0] is not embed:
            feats, _, _ = extract_features(embed, test_loader(self.gallery, self.data_cfg), device, flip,
                                           desc="swap gallery")
            self._gallery_features = (embed, feats)
        return self._gallery_features[1]

    @torch.no_grad()
    def model_images(self, draw, device: torch.device, batch_size: int) -> torch.Tensor:
        out = []
        for s, a in zip(self.structure.split(batch_size), self.appearance.split(batch_size)):
            out.append(denormalize(draw(s.to(device), a.to(device)).float()).clamp(0, 1).cpu())
        return torch.cat(out)

    def truth_rows(self, generated: torch.Tensor, count: int | None = None) -> torch.Tensor:
        """(4, count, 3, H, W) in [0, 1]: A, S, the true swap and `generated` (the model's images) of
        the first `count` pairs (all by default)."""
        k = len(generated) if count is None else min(count, len(generated))
        return torch.stack([denormalize(self.appearance[:k]), denormalize(self.structure[:k]),
                            self.truths.image[:k], generated[:k].float()])

    def score(self, draw, embed=None, device: torch.device = torch.device("cpu"), batch_size: int = 64,
              flip: bool = True) -> tuple[dict[str, dict[str, float]], torch.Tensor]:
        """(method → scores, the model's images in [0, 1])."""
        generated = {"model": self.model_images(draw, device, batch_size),
                     "model_reconstruction": self.model_images(lambda s, a: draw(s, s), device, batch_size),
                     **baselines(denormalize(self.appearance), denormalize(self.structure))}
        identify = None if embed is None else gallery_identifier(
            embed, self.gallery_features(embed, device, flip), [g.pid for g in self.gallery], device, batch_size, flip)
        return score_methods(generated, self.truths, identify, self.a_pids, self.s_pids), generated["model"]


def _load(samples, data_cfg) -> torch.Tensor:
    return normalize(torch.cat([b["image"] for b in test_loader(samples, data_cfg)]))


def flat(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """`swap.<method>.<score>` keys."""
    return {f"swap.{m}.{k}": v for m, scores in results.items() for k, v in scores.items()}


def table(results: dict[str, dict[str, float]]) -> str:
    """The scores as a plain-text table, one row per method."""
    heads = {"ssim": "SSIM↑", "delta_e_upper": "ΔE upper↓", "delta_e_lower": "ΔE lower↓",
             "id_appearance": "id A↑", "id_structure": "id S"}
    keys = [k for k in SCORES if any(k in r for r in results.values())]
    lines = [f"{'swap':<22}" + "".join(f"{heads[k]:>11}" for k in keys)]
    for method, scores in results.items():
        lines.append(f"{method:<22}" + "".join(f"{scores[k]:>11.3f}" if k in scores else f"{'':>11}" for k in keys))
    return "\n".join(lines)
