"""Cluster Contrast's memory: one unit centroid per cluster, a contrastive loss over all of them."""
import torch
import torch.nn.functional as F
from torch import nn


class Memory(nn.Module):
    """A memory read by `loss` and written by `update`; calling it does both, reading first
    (Cluster Contrast and HHCL update in the backward pass, after the logits are taken)."""

    def forward(self, features, labels):
        loss = self.loss(features, labels)
        self.update(features, labels)
        return loss


class ClusterMemory(Memory):
    """Cluster centroids and the InfoNCE loss of Cluster Contrast.

    The loss is cross-entropy over cos(feature, centroid) / temperature for all clusters. After
    each batch every cluster present moves once (see `momentum_update`): towards the mean of
    its batch features (`mode="mean"`) or towards its hardest positive, the batch feature
    least similar to its centroid (`mode="hard"`).

    For results that do not depend on the number of devices, `update` must see the whole
    global batch (all-gathered features and labels) on every device.
    """

    def __init__(self, centroids, temperature=0.05, momentum=0.2, mode="mean",
                 label_smoothing=0.0):
        super().__init__()
        if mode not in ("mean", "hard"):
            raise ValueError(f"mode must be 'mean' or 'hard', got {mode!r}.")
        self.temperature, self.momentum, self.mode = temperature, momentum, mode
        self.label_smoothing = label_smoothing
        self.register_buffer("centroids", F.normalize(centroids.detach().float(), dim=1))

    @classmethod
    def from_clusters(cls, features, labels, generator=None, **kwargs):
        """Centroids of the clusters (nothing is drawn at random: `generator` is unused)."""
        return cls(cluster_centroids(features, labels), **kwargs)

    @classmethod
    def from_state(cls, state, **kwargs):
        """A memory of the shape `state` holds (load it next)."""
        return cls(state["centroids"], **kwargs)

    def logits(self, features):
        return F.normalize(features, dim=1) @ self.centroids.T / self.temperature

    def loss(self, features, labels):
        return F.cross_entropy(self.logits(features), labels,
                               label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def update(self, features, labels):
        features = F.normalize(features.detach().to(self.centroids.dtype), dim=1)  # fp32 under AMP
        self.centroids = momentum_update(self.centroids, features, labels, self.momentum, self.mode)


def cluster_centroids(features, labels):
    """(C, D) unit mean feature of each cluster 0..C-1 = labels.max(); label -1 is left out."""
    features, labels = torch.as_tensor(features).float(), torch.as_tensor(labels)
    keep = labels >= 0
    num = int(labels.max()) + 1
    sums = features.new_zeros(num, features.shape[1]).index_add_(0, labels[keep], features[keep])
    return F.normalize(sums, dim=1)  # the norm of the sum is that of the mean


def momentum_update(memory, features, labels, momentum, mode="mean"):
    """Memory rows after one batch, as a new tensor: each label present moves once.

    row <- normalise(momentum * row + (1 - momentum) * target), where the target is the mean of
    the label's batch features ("mean") or the one least similar to the row, the earliest in
    the batch on ties ("hard"). One move per label, unlike the reference's one per sample for
    "mean": the result does not depend on the order of the batch.
    """
    unique, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
    if mode == "mean":
        target = features.new_zeros(len(unique), features.shape[1]).index_add_(0, inverse, features)
        target /= counts[:, None]
    else:
        similarity = (features * memory[labels]).sum(1)
        by_similarity = similarity.argsort(stable=True)
        grouped = by_similarity[inverse[by_similarity].argsort(stable=True)]  # by label, then sim
        target = features[grouped[counts.cumsum(0) - counts]]  # the first of each label
    rows = F.normalize(momentum * memory[unique] + (1.0 - momentum) * target, dim=1)
    return memory.index_copy(0, unique, rows)
