"""HHCL's hybrid memories: a hard-sample part beside Cluster Contrast's centroids.

The loss is hard_weight * CE_hard + (1 - hard_weight) * CE_mean. (The reference multiplies
the mean term by hard_weight as well through a misplaced bracket, and its instance variant
weighs the two terms the other way round; here hard_weight always weighs the hard part.)
"""
import torch
import torch.nn.functional as F

from .cluster_memory import ClusterMemory, Memory, cluster_centroids


class HybridMemory(Memory):
    """Two centroid memories of the same clusters: one moved by each cluster's hardest
    positive in the batch, one by its batch mean."""

    def __init__(self, centroids, temperature=0.05, momentum=0.1, hard_weight=0.5,
                 label_smoothing=0.0):
        super().__init__()
        self.hard_weight = hard_weight
        self.hard, self.mean = (ClusterMemory(centroids, temperature, momentum, mode,
                                              label_smoothing) for mode in ("hard", "mean"))

    @classmethod
    def from_clusters(cls, features, labels, generator=None, **kwargs):
        """Both parts start at the clusters' centroids (nothing is drawn: `generator` is unused)."""
        return cls(cluster_centroids(features, labels), **kwargs)

    @classmethod
    def from_state(cls, state, **kwargs):
        """A memory of the shape `state` holds (load it next)."""
        return cls(state["mean.centroids"], **kwargs)

    def loss(self, features, labels):
        return (self.hard_weight * self.hard.loss(features, labels)
                + (1.0 - self.hard_weight) * self.mean.loss(features, labels))

    @torch.no_grad()
    def update(self, features, labels):
        self.hard.update(features, labels)
        self.mean.update(features, labels)


class InstanceHybridMemory(Memory):
    """HHCL's instance-level variant: centroids (batch-mean update) and K stored instance
    features per cluster.

    The hard logits of a feature take, for its own cluster, its least similar stored instance
    (hardest positive) and, for every other cluster, the most similar one (hardest negative).
    An update writes a cluster's batch features, in batch order, into its slots 0, 1, ...
    (replacing, no momentum); features beyond the K-th of a cluster in one batch are not kept.
    """

    def __init__(self, centroids, instances, temperature=0.05, momentum=0.1, hard_weight=0.5,
                 label_smoothing=0.0):
        super().__init__()
        if instances.ndim != 3 or instances.shape[1:] != centroids.shape:
            raise ValueError(f"instances must be (K, clusters, dims) = (K, "
                             f"{', '.join(map(str, centroids.shape))}), got {tuple(instances.shape)}.")
        self.temperature, self.hard_weight = temperature, hard_weight
        self.label_smoothing = label_smoothing
        self.centroid = ClusterMemory(centroids, temperature, momentum, "mean", label_smoothing)
        self.register_buffer("instances", F.normalize(instances.detach().float(), dim=2))

    @classmethod
    def from_clusters(cls, features, labels, num_instances, generator=None, **kwargs):
        """Centroids from the clusters; each cluster's K slots drawn from its members with
        replacement, as the reference initialises them."""
        features, labels = torch.as_tensor(features).float(), torch.as_tensor(labels)
        centroids = cluster_centroids(features, labels)
        keep = (labels >= 0).nonzero().squeeze(1)
        members = keep[labels[keep].argsort(stable=True)]  # image indices grouped by cluster
        counts = torch.bincount(labels[keep], minlength=len(centroids))
        starts = counts.cumsum(0) - counts
        draw = (torch.rand(num_instances, len(centroids), generator=generator) * counts).long()
        return cls(centroids, features[members[starts + draw]], **kwargs)

    @classmethod
    def from_state(cls, state, num_instances=None, **kwargs):
        """A memory of the shape `state` holds (load it next); its slot count is the state's."""
        return cls(state["centroid.centroids"], state["instances"], **kwargs)

    def hard_logits(self, features, labels):
        k, num, dims = self.instances.shape
        similarity = (F.normalize(features, dim=1) @ self.instances.reshape(k * num, dims).T)
        similarity = similarity.view(-1, k, num)
        own = F.one_hot(labels, num).bool()
        return torch.where(own, similarity.amin(1), similarity.amax(1)) / self.temperature

    def loss(self, features, labels):
        hard = F.cross_entropy(self.hard_logits(features, labels), labels,
                               label_smoothing=self.label_smoothing)
        return (self.hard_weight * hard
                + (1.0 - self.hard_weight) * self.centroid.loss(features, labels))

    @torch.no_grad()
    def update(self, features, labels):
        self.centroid.update(features, labels)
        _, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
        by_label = inverse.argsort(stable=True)
        slot = torch.empty_like(labels)
        slot[by_label] = torch.arange(len(labels), device=labels.device) - \
            (counts.cumsum(0) - counts)[inverse[by_label]]  # rank within the cluster, batch order
        keep = slot < self.instances.shape[0]
        rows = F.normalize(features.detach()[keep].to(self.instances.dtype), dim=1)
        self.instances = self.instances.index_put((slot[keep], labels[keep]), rows)
