"""Memories and losses of the unsupervised methods.

Cluster Contrast (`ClusterMemory`, modes "mean" and "hard"), HHCL (`HybridMemory`,
`InstanceHybridMemory`) and Central Feature Learning (`CentralFeatureMemory` with
`patch_loss` and `image_loss`), GCL (`ViewMemory`). Memories are buffers, never parameters: updates run without
gradients and replace the buffer rather than write into it, so a loss computed before an
update still back-propagates through the values it read.
"""
from .central import CentralFeatureMemory
from .cfl_losses import image_loss, patch_loss
from .cluster_memory import ClusterMemory, Memory, cluster_centroids, momentum_update
from .hybrid import HybridMemory, InstanceHybridMemory
from .view_memory import ViewMemory

__all__ = ["CentralFeatureMemory", "ClusterMemory", "HybridMemory", "InstanceHybridMemory",
           "Memory", "cluster_centroids", "image_loss", "momentum_update", "patch_loss", "ViewMemory"]
