"""Central Feature Learning's losses against the central features (after the batch's update).

Both come from PAUL (Yang et al., CVPR 2019), which CFL builds on: a patch-level loss that
pulls each patch towards its k nearest other images' central patches, and an image-level
hinge between an image's views and the central features of the images in the batch.
"""
import torch
import torch.nn.functional as F


def patch_loss(features, indexes, central, scale=15.0, k=10):
    """Patch-based discriminative loss (PEDAL).

    For each image b and patch p, over the squared distances d to the central patch p of
    every other image: -log(sum over the k nearest of exp(-scale d) / sum over all of them);
    averaged over images and patches. CFL grows k during training (10 + 20 * epoch / 60).

    Args:
        features: (B, P, D) patch features of the batch (one view per image).
        indexes: (B,) image indexes into the memory.
        central: (N, P, D) central patch features.
    """
    f, c = features.transpose(0, 1), central.transpose(0, 1)  # (P, B, D), (P, N, D)
    # Squared distances without a square root, whose gradient at 0 is infinite.
    dist = torch.baddbmm((c * c).sum(2)[:, None, :], f, c.transpose(1, 2), alpha=-2.0)
    dist = (dist + (f * f).sum(2)[:, :, None]).clamp(min=0.0)  # (P, B, N)
    own = F.one_hot(indexes, central.shape[0]).bool()
    logits = (-scale * dist).masked_fill(own, float("-inf"))
    nearest = logits.topk(k, dim=2).values
    return (logits.logsumexp(2) - nearest.logsumexp(2)).mean()


def image_loss(features, indexes, central, margin=2.0, max_rank=15, nearest=3):
    """Image-level hinge loss with cycle-consistent negatives (PAUL's IPFL).

    Anchor a is a view of image i = indexes[a]; centres are the central features of the
    batch's images. The positive distance is |f_a - c_i|. The negative is the nearest centre
    c_j among a's max_rank nearest other centres whose own `nearest` nearest centres (itself
    included) do not contain c_i -- i.e. j does not rank i as a neighbour, so j is trusted to
    be another person; 0 when there is none. Loss: mean of relu(margin + pos - neg).

    Args:
        features: (M, D) image features of all views in the batch.
        indexes: (M,) image index of each view (views of one image share it).
        central: (N, D) central image features.
    """
    unique, inverse = indexes.unique(return_inverse=True)
    centres = central[unique]
    dist = torch.cdist(features, centres)  # (M, U) Euclidean
    own = F.one_hot(inverse, len(unique)).bool()
    positive = dist[own]
    near = torch.cdist(centres, centres).topk(min(nearest, len(unique)), largest=False).indices
    neighbour_of = torch.zeros(len(unique), len(unique), dtype=torch.bool, device=dist.device)
    neighbour_of[torch.arange(len(unique), device=dist.device)[:, None], near] = True  # [j, i]
    trusted = ~neighbour_of.T[inverse] & ~own  # (M, U): centre j does not rank a's image near
    rank = dist.detach().masked_fill(own, float("inf")).argsort(dim=1).argsort(dim=1)
    candidate = trusted & (rank < max_rank)
    negative = dist.masked_fill(~candidate, float("inf")).amin(1)
    negative = torch.where(candidate.any(1), negative, torch.zeros_like(negative))
    return F.relu(margin + positive - negative).mean()
