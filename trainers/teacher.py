"""`trainer: teacher` — the supervised ResNet-50 re-ID baseline DG-Net uses as its teacher.

Identity cross-entropy (optionally label-smoothed) plus an optional batch-hard triplet loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models import build_reid_net
from reid_data import BatchAugment, ImageDataset, dataset_from_config, denormalize, train_loader
from reid_eval.evaluator import evaluate_embedding

from .base import Trainer
from .losses import triplet_loss
from .optim import build_optimizer, build_scheduler


class ReIDNetRun:
    """What the runs that train one re-ID network (`self.model`, a ReIDNet) share: the grid of the
    last augmented batch and the query/gallery evaluation of its embedding."""

    def images(self) -> dict[str, torch.Tensor]:
        return {"train/augmented_batch": denormalize(self._last_batch[:16].detach().float().cpu())}

    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        self.model.eval()
        rerank = self.cfg.test.rerank if rerank is None else rerank
        return evaluate_embedding(self.model.embed, self.data, self.cfg.data, self.device,
                                  flip=self.cfg.test.flip, rerank=rerank,
                                  autocast_dtype=self.amp_dtype)


class TeacherTrainer(ReIDNetRun, Trainer):
    name = "teacher"

    def build(self) -> None:
        cfg = self.cfg
        self.data = dataset_from_config(cfg.data)
        if cfg.loss.triplet_weight > 0 and cfg.data.instances < 2:
            raise ValueError("loss.triplet_weight needs identity-balanced batches: set data.instances >= 2")
        self.model = build_reid_net(cfg.model, self.data.num_train_pids).to(self.device)
        groups = [{"params": self.model.backbone.parameters(), "lr_mult": cfg.optim.backbone_lr_mult},
                  {"params": self.model.new_parameters(), "lr_mult": 1.0}]
        optimizer = build_optimizer(cfg.optim, groups)
        self.augment = BatchAugment(cfg.augment.flip, cfg.augment.pad, cfg.augment.erasing, seed=cfg.run.seed)
        self.modules = {"model": self.model}
        self.optimizers = {"model": optimizer}
        self.schedulers = {"model": build_scheduler(optimizer, cfg.optim)}
        self.stateful = {"augment": self.augment}

    def batches(self, start: int):
        cfg = self.cfg
        dataset = ImageDataset(self.data.train, cfg.data.height, cfg.data.width)
        return iter(train_loader(dataset, cfg.data, cfg.run.seed, start,
                                 pin_memory=self.device.type == "cuda"))

    def train_step(self, batch) -> dict[str, float]:
        images = self.augment(batch["image"].to(self.device, non_blocking=True))
        self._last_batch = images
        pids = batch["pid"].to(self.device, non_blocking=True)
        with self.autocast():
            out = self.model(images)
        loss_id = F.cross_entropy(out.logits.float(), pids, label_smoothing=self.cfg.loss.label_smoothing)
        losses = {"id": loss_id}
        if self.cfg.loss.triplet_weight > 0:
            losses["triplet"] = triplet_loss(out.feature.float(), pids, self.cfg.loss.triplet_margin)
        total = loss_id + self.cfg.loss.triplet_weight * losses.get("triplet", 0.0)
        self.optimize(total, "model")
        accuracy = (out.logits.argmax(1) == pids).float().mean()
        return {"loss": total.item(), **{k: v.item() for k, v in losses.items()}, "accuracy": accuracy.item()}
