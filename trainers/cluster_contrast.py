"""`trainer: cluster_contrast` — unsupervised re-ID by clustering: Cluster Contrast, HHCL, CFL.

Each epoch of `cluster.iters` iterations starts by extracting features of the training images
(no labels), clustering them (sparse k-reciprocal Jaccard distance + DBSCAN) and building the
memory chosen by `memory.kind` from the clusters; the epoch then trains on identity-balanced,
camera-aware batches of the pseudo labels. Epochs sit inside the shared iteration loop: a hook
re-clusters before each (`trainers.pseudo_labels.Recluster`), the batch stream is the epoch's,
and the epoch's labels and memory are checkpointed, so a resumed run equals an uninterrupted one.

Under torchrun every process extracts a share of the images and all of them cluster the
gathered features, so labels and memories are identical everywhere; memory updates see the
whole global batch.
"""
from __future__ import annotations

import itertools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from models import build_reid_net
from reid_data import BatchAugment, UnlabeledDataset, train_loader
from runtime import checkpoint
from runtime.errors import TrainingStopped

from . import distributed
from .cluster_round import ClusterRound, memory_options
from .pseudo_labels import PseudoLabelTrainer
from .teacher import ReIDNetRun
from .memories import image_loss, patch_loss
from .optim import build_optimizer, build_scheduler


class ClusterContrastTrainer(ReIDNetRun, PseudoLabelTrainer):
    name = "cluster_contrast"

    def build(self) -> None:
        cfg = self.cfg
        if cfg.data.instances < 2:
            raise ValueError("trainer cluster_contrast samples identities × instances: set data.instances >= 2")
        options = memory_options(cfg.memory, cfg.data.instances)
        self.load_training_set()
        with warnings.catch_warnings():  # no classifier (0 classes): the memory classifies
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.model = build_reid_net(cfg.model, 0).to(self.device)
        if cfg.cluster.init_from:
            self._init_backbone(cfg.cluster.init_from)
        if cfg.model.sync_bn and distributed.world_size() > 1:
            if self.device.type != "cuda":
                raise TrainingStopped("model.sync_bn needs CUDA (torch's SyncBatchNorm has no CPU "
                                      "kernel); set model.sync_bn=false for CPU processes")
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        groups = [{"params": self.model.backbone.parameters(), "lr_mult": cfg.optim.backbone_lr_mult},
                  {"params": self.model.new_parameters(), "lr_mult": 1.0}]
        optimizer = build_optimizer(cfg.optim, groups)
        self.augment = BatchAugment(cfg.augment.flip, cfg.augment.pad, cfg.augment.erasing, seed=cfg.run.seed)
        pid_gains = {"kp": cfg.cfl.kp, "ki": cfg.cfl.ki, "kd": cfg.cfl.kd}
        self.round = ClusterRound(cfg.memory.kind, options, pid_gains, self.device)
        self.modules = {"model": self.model}
        self.optimizers = {"model": optimizer}
        self.schedulers = {"model": build_scheduler(optimizer, cfg.optim)}
        self.stateful = {"augment": self.augment, "round": self.round}
        self.epoch_iters = cfg.cluster.iters

    def embedding_network(self) -> nn.Module:
        return self.model

    def _init_backbone(self, path: str) -> None:
        """Backbone weights from another run's checkpoint (same backbone and last stride)."""
        network = checkpoint.read_checkpoint(path)["modules"].get("model", {})
        weights = {k.removeprefix("backbone."): v for k, v in network.items() if k.startswith("backbone.")}
        try:
            self.model.backbone.load_state_dict(weights)
        except RuntimeError:
            raise checkpoint.CheckpointError(
                f"cluster.init_from {path} holds no {self.cfg.model.backbone} backbone of this shape; "
                f"use a run with the same model.backbone and model.last_stride") from None

    # --- epochs ---------------------------------------------------------------------------
    def batches(self, start: int):
        """The rest of the epoch that holds iteration `start`: PK batches of its pseudo labels."""
        epoch, offset = divmod(start, self.epoch_iters)
        dataset = UnlabeledDataset(self.train_samples, self.cfg.data.height, self.cfg.data.width)
        loader = train_loader(dataset, self.cfg.data, self._epoch_seed(epoch), offset,
                              labels=self.round.labels.tolist(), pin_memory=self.device.type == "cuda")
        return itertools.islice(loader, self.epoch_iters - offset)

    def _epoch_seed(self, epoch: int) -> int:
        return self.cfg.run.seed * 100_000 + epoch

    @torch.no_grad()
    def recluster(self, epoch: int) -> None:
        features = self.extract_training_features(self.model.embed, self.model)
        clusters = self.cluster(features, epoch)
        identities = self.cfg.data.batch_size // self.cfg.data.instances
        if len(clusters.counts) < identities:
            raise TrainingStopped(
                f"epoch {epoch}: clustering found {len(clusters.counts)} clusters, fewer than the {identities} "
                f"identities a batch needs; raise cluster.eps (now {clusters.eps:.3f}) or lower data.batch_size")
        labels = torch.as_tensor(clusters.labels)
        self.round.start(epoch, labels, features, torch.Generator().manual_seed(self._epoch_seed(epoch)))
        if self.cfg.memory.kind == "cfl" and not self.round.central:  # CFL's memory spans the whole run
            self.round.init_central("image", features)
            patches = self.extract_training_features(lambda x: self._patches(self.model.backbone(x)).flatten(1),
                                                     self.model)
            self.round.init_central("patch", F.normalize(patches.view(len(patches), self.cfg.cfl.patches, -1), dim=2))

    # --- one iteration --------------------------------------------------------------------
    def _patches(self, feature_map: torch.Tensor) -> torch.Tensor:
        """(B, P, C) unit patch features: the map averaged over P horizontal stripes."""
        stripes = F.adaptive_avg_pool2d(feature_map, (self.cfg.cfl.patches, 1)).flatten(2)
        return F.normalize(stripes.transpose(1, 2), dim=2)

    def train_step(self, batch) -> dict[str, float]:
        images = self.augment(batch["image"].to(self.device, non_blocking=True))
        self._last_batch = images
        index = batch["index"].to(self.device, non_blocking=True)
        labels = self.round.labels[index]
        with self.autocast():
            feature_map = self.model.backbone(images)
            embedding = self.model.head(self.model.pool(feature_map))[1]
        embedding, feature_map = embedding.float(), feature_map.float()
        losses = {"contrast": self.round.memory.loss(embedding, labels)}
        total = losses["contrast"]
        if self.round.central:
            total = total + self._central_losses(losses, embedding, feature_map, index)
        self.optimize(total, "model")
        self.round.memory.update(distributed.all_gather_rows(embedding.detach()),
                                 distributed.all_gather_rows(labels))
        return {"loss": total.item(), **{k: v.item() for k, v in losses.items()}}

    def _central_losses(self, losses: dict, embedding, feature_map, index) -> torch.Tensor:
        """CFL: move the batch's central features (PID rule, whole global batch), then the
        patch and image losses against them."""
        cfl = self.cfg.cfl
        views = {"image": F.normalize(embedding, dim=1), "patch": self._patches(feature_map)}
        every_index = distributed.all_gather_rows(index)
        for name, features in views.items():
            self.round.central[name].update(every_index, distributed.all_gather_rows(features.detach()))
        losses["patch"] = patch_loss(views["patch"], index, self.round.central["patch"].central,
                                     cfl.patch_scale, cfl.patch_k)
        losses["image"] = image_loss(views["image"], index, self.round.central["image"].central,
                                     margin=cfl.image_margin)
        return cfl.patch_weight * losses["patch"] + cfl.image_weight * losses["image"]
