"""What the unsupervised trainers (cluster_contrast, gcl) share: training images without their
labels, pseudo labels from k-reciprocal Jaccard distance + DBSCAN on features every process
agrees on, and best-epoch selection on held-out training identities (never the test set).
"""
from __future__ import annotations

import json
from typing import Callable

import torch
from sklearn.metrics import adjusted_rand_score
from tqdm import tqdm

from reid_data import dataset_from_config, test_loader
from reid_eval.cluster import Clusters, dbscan
from reid_eval.evaluator import evaluate_embedding
from reid_eval.features import extract_features
from reid_eval.rerank import jaccard_distance

from runtime import checkpoint

from . import distributed
from .base import Trainer
from .hooks import Hook
from .holdout import split_identities


class Recluster(Hook):
    """Each epoch starts with a clustering (`trainer.recluster`); a run resumed inside an epoch keeps
    its checkpoint's clustering (`trainer.round`) for the rest of it. In every process: all of them
    extract a share of the features and cluster the whole."""

    main_only = False

    def before_epoch(self, trainer, epoch):
        if trainer.iteration % trainer.epoch_iters == 0 or trainer.round.epoch != epoch:
            trainer.recluster(epoch)


class HoldoutSelection(Hook):
    """After every `cluster.select_every`-th epoch: the held-out identities' mAP, the best weights to
    checkpoints/best.pt (`select_on_holdout`), the best score kept in `trainer.round.best`."""

    def after_step(self, trainer, losses):
        trainer.round.best = trainer.select_on_holdout(trainer.iteration, trainer.round.best)


class PseudoLabelTrainer(Trainer):
    """A trainer over `self.train_samples` (the training set less `cluster.holdout_ids`
    identities, which form `self.holdout`); call `load_training_set` in `build`. With epochs
    (`epoch_iters`), it re-clusters at each (`recluster`) and picks its best epoch on the held-out
    identities; `round` holds the epoch's clustering and the best score."""

    def embedding_network(self) -> torch.nn.Module:
        """The network whose `embed` is clustered and scored on the held-out identities."""
        raise NotImplementedError

    def recluster(self, epoch: int) -> None:
        raise NotImplementedError

    def hooks(self) -> list[Hook]:
        epochs = [Recluster(), HoldoutSelection()] if self.epoch_iters else []
        return epochs + super().hooks()

    def load_training_set(self) -> None:
        cfg = self.cfg
        self.data = dataset_from_config(cfg.data)
        self.train_samples, self.holdout = split_identities(self.data.train, cfg.cluster.holdout_ids, cfg.run.seed)

    def extract_training_features(self, embed: Callable[[torch.Tensor], torch.Tensor],
                                  *modules: torch.nn.Module) -> torch.Tensor:
        """Unit features (N, D) of all training images, identical in every process: each
        extracts every world-size-th image (`modules` in eval mode) and the shares are gathered."""
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        rank, world = distributed.rank(), distributed.world_size()
        share, _, _ = extract_features(embed, test_loader(self.train_samples[rank::world], self.cfg.data),
                                       self.device, flip=False, autocast_dtype=self.amp_dtype, desc="cluster")
        for m, mode in zip(modules, modes):
            m.train(mode)
        gathered = distributed.all_gather_rows(share.to(self.device)).cpu()
        order = torch.cat([torch.arange(r, len(self.train_samples), world) for r in range(world)])
        return torch.empty_like(gathered).index_copy_(0, order, gathered)

    def cluster(self, features: torch.Tensor, epoch: int) -> Clusters:
        """Pseudo labels of `features` by the `cluster` section (logged to clusters.jsonl)."""
        c = self.cfg.cluster
        clusters = dbscan(jaccard_distance(features, c.k1, c.k2), eps=None if c.rho is not None else c.eps,
                          rho=c.rho, min_samples=c.min_samples, outliers=c.outliers)
        if self.is_main:
            # The true identities are read only for this diagnostic (adjusted Rand index), never trained on.
            ari = adjusted_rand_score([s.pid for s in self.train_samples], clusters.labels)
            record = {"clusters": clusters.num_clusters, "outliers": clusters.num_outliers, "eps": clusters.eps,
                      "ari": ari}
            tqdm.write(f"[{self.name}] epoch {epoch}: " + ", ".join(f"{k} {v:.3g}" for k, v in record.items()))
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "clusters.jsonl", "a") as f:
                f.write(json.dumps({"iteration": self.iteration, "epoch": epoch, **record}) + "\n")
        return clusters

    def select_on_holdout(self, done: int, best: float) -> float:
        """After every `cluster.select_every`-th epoch of `cluster.iters` iterations (`done`
        iterations so far), score the embedding network on the held-out identities and keep the best
        weights in checkpoints/best.pt (main process only). Returns the best score so far."""
        c = self.cfg.cluster
        if not (self.holdout.query and self.is_main and done % (c.iters * c.select_every) == 0):
            return best
        model = self.embedding_network()
        training = model.training
        model.eval()
        score = evaluate_embedding(model.embed, self.holdout, self.cfg.data, self.device,
                                   flip=self.cfg.test.flip, autocast_dtype=self.amp_dtype)["mAP"]
        model.train(training)
        better = score > best
        if better:
            checkpoint.save_atomic({"trainer": self.name, "iteration": done, "config": self.cfg.to_dict(),
                                    "modules": {k: m.state_dict() for k, m in self.modules.items()}},
                                   self.checkpoint_dir / "best.pt")
        tqdm.write(f"[{self.name}] iteration {done}: held-out mAP {score:.4f}{' (best)' if better else ''}")
        with open(self.run_dir / "selection.jsonl", "a") as f:
            f.write(json.dumps({"iteration": done, "holdout_mAP": score, "best": better}) + "\n")
        return max(score, best)
