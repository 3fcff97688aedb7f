"""GCL's memory: one unit feature per training image, contrasted with a generated novel view."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from configs.loader import ConfigError

from .cluster_memory import cluster_centroids


class ViewMemory(nn.Module):
    """One slot per training image (its feature, momentum-averaged) and its pseudo label.

    For a batch of original features f and features f' of the same people generated in a novel
    view, three InfoNCE terms (temperature τ), each with the same K negatives per image, drawn
    without replacement from the slots of other pseudo labels (outliers, label −1, included):
        instance  — f' against the image's own slot;
        view      — f' against a random slot of its pseudo label;
        original  — f  against that same slot.
    The label's slot is drawn among the label's other images when it has any. Everything is
    batched: the draws are random scores masked by label and ranked, no per-image loop.

    `positive="centroid"` replaces that random slot in the view and original terms by the mean of
    the label's slots (normalised), as a cluster memory does: a pseudo label that merges several
    people then pulls towards their average instead of towards one of them drawn at random.
    """

    POSITIVES = ("slot", "centroid")

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.04,
                 momentum: float = 0.2, negatives: int = 8192, positive: str = "slot"):
        super().__init__()
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} features but {len(labels)} labels")
        check_positive(positive)
        self.temperature, self.momentum, self.negatives, self.positive = temperature, momentum, negatives, positive
        self.register_buffer("features", F.normalize(features.detach().float(), dim=1))
        self.register_buffer("labels", torch.as_tensor(labels, dtype=torch.long).clone())

    def relabel(self, labels: torch.Tensor, features: torch.Tensor | None = None) -> None:
        """New pseudo labels (and, when given, fresh features) for every slot."""
        self.labels = torch.as_tensor(labels, dtype=torch.long, device=self.labels.device).clone()
        if features is not None:
            self.features = F.normalize(features.detach().float().to(self.features.device), dim=1)

    def draw(self, slots: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """For images at ``slots`` (B,): a slot of the same label (B,) and K slots of other
        labels (B, K), K = min(negatives, the fewest other-label slots of any image)."""
        labels = self.labels[slots]
        if (labels < 0).any():
            raise ValueError("an image without a pseudo label (−1) cannot be contrasted")
        n = len(self.labels)
        same = self.labels.unsqueeze(0) == labels.unsqueeze(1)                     # (B, N)
        others = same.clone()
        others[torch.arange(len(slots), device=slots.device), slots] = False
        positive_pool = torch.where(others.any(1, keepdim=True), others, same)
        scores = torch.rand(len(slots), n, generator=generator, device=generator.device).to(same.device)
        positives = scores.masked_fill(~positive_pool, -1.0).argmax(1)
        k = min(self.negatives, n - int(same.sum(1).max()))
        if k < 1:
            raise ValueError("every slot has the batch's pseudo label: there is no negative to contrast")
        scores = torch.rand(len(slots), n, generator=generator, device=generator.device).to(same.device)
        negatives = scores.masked_fill(same, -1.0).topk(k, dim=1).indices
        return positives, negatives

    def loss(self, original: torch.Tensor, view: torch.Tensor, slots: torch.Tensor,
             generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The three terms (see the class) for original features (B, D), their generated
        views' features (B, D) and their slots (B,)."""
        original, view = F.normalize(original.float(), dim=1), F.normalize(view.float(), dim=1)
        positives, negatives = self.draw(slots, generator)
        # similarities to every slot, then gathered: never a (B, K, D) copy of the negatives
        to_view, to_original = view @ self.features.T, original @ self.features.T        # (B, N)
        if self.positive == "centroid":
            centre = cluster_centroids(self.features, self.labels)[self.labels[slots]]  # (B, D)
            view_pos, original_pos = (view * centre).sum(1), (original * centre).sum(1)
        else:
            view_pos, original_pos = to_view.gather(1, positives[:, None]), to_original.gather(1, positives[:, None])
        return {"instance": _info_nce(to_view.gather(1, slots[:, None]), to_view, negatives, self.temperature),
                "view": _info_nce(view_pos, to_view, negatives, self.temperature),
                "original": _info_nce(original_pos, to_original, negatives, self.temperature)}

    @torch.no_grad()
    def update(self, original: torch.Tensor, slots: torch.Tensor) -> None:
        """slot ← normalise(momentum·slot + (1 − momentum)·f) for the images' original features."""
        f = F.normalize(original.detach().float(), dim=1)
        moved = F.normalize(self.momentum * self.features[slots] + (1 - self.momentum) * f, dim=1)
        self.features = self.features.index_copy(0, slots, moved)


def check_positive(positive: str) -> None:
    if positive not in ViewMemory.POSITIVES:
        raise ConfigError(f"unknown gcl.positive {positive!r}; choose one of {', '.join(ViewMemory.POSITIVES)}")


def _info_nce(positive: torch.Tensor, similarity: torch.Tensor, negatives: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """Cross-entropy of the positive similarity (B,) or (B, 1) against the negatives, gathered
    from (B, N) similarities to every slot."""
    logits = torch.cat([positive.reshape(-1, 1), similarity.gather(1, negatives)], dim=1)
    logits = logits / temperature
    return F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long))
