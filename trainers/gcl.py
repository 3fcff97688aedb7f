"""`trainer: gcl` — GCL: joint generative and contrastive unsupervised re-ID (Chen et al., CVPR 2021).

Each image comes with grey renders of its body mesh as seen and turned by 45°, ..., 315°
(`mesh.precompute`). Per iteration the generator draws the person from its identity code
(a) in its own render (reconstruction), (b) in the render of a random other angle (novel view),
and (c) in its own render again from the code re-encoded from the novel view (cycle). The
discriminator is stepped on the three, then the generator on reconstruction and cycle L1,
appearance-code reconstruction and LSGAN, and in stage 3 generator and identity encoder on the
memory's InfoNCE terms contrasting the original and the novel view with the image's own and its
pseudo label's slots (`trainers.memories.ViewMemory`).

The image losses reach the identity encoder in neither stage (its code is detached, and the
generated images are re-encoded through it with its weights detached), as in this suite's
DG-Net: they would pull pixel detail into the re-ID features (the reference lets them train it
in stage 3). Stage 2 trains generator and discriminator with the identity encoder frozen (no
gradient is computed into it, eval mode). Stage 3 trains everything, the identity encoder by
the memory alone; every `cluster.iters` iterations the training images' features are extracted
afresh, re-clustered (Jaccard + DBSCAN) and written to the memory with their pseudo labels;
only clustered images are trained on. The best epoch is
chosen on held-out training identities (`cluster.holdout_ids`), never on the test set.
"""
from __future__ import annotations

import itertools
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

from configs.loader import ConfigError
from mesh.renders import ANGLES, RenderedImages, RenderSet
from models.gcl import build_gcl, normalize_render
from reid_data import DatasetError, denormalize, normalize, train_loader
from reid_eval.evaluator import evaluate_embedding
from reid_eval.generation.views import novel_views
from runtime import checkpoint
from runtime.errors import TrainingStopped

from . import distributed
from .gan import first_per_identity, frozen, image_grid, lsgan_fake, lsgan_generator, real_terms
from .memories import ViewMemory
from .memories.view_memory import check_positive
from .optim import build_optimizer, build_scheduler
from .pseudo_labels import PseudoLabelTrainer

GENERATED = 3  # reconstruction, novel view, cycle: each has its own adversarial term
GRID_COLUMNS = 8


class ViewRound:
    """Stage 3's state between clusterings: the epoch, the memory (slots and pseudo labels),
    the best held-out score, and the generator of every random draw (novel angles, memory
    positives and negatives) — all checkpointed, so a resumed run draws as an unbroken one."""

    def __init__(self, seed: int, memory_options: dict, device: torch.device):
        self.epoch, self.best = -1, float("-inf")
        self.memory: ViewMemory | None = None
        self.memory_options, self.device = memory_options, device
        self.generator = torch.Generator().manual_seed(seed)

    def start(self, epoch: int, features: torch.Tensor, labels: torch.Tensor) -> None:
        """The epoch's pseudo labels, with the slots refreshed to the features they came from."""
        self.epoch = epoch
        if self.memory is None:
            self.memory = ViewMemory(features, labels, **self.memory_options).to(self.device)
        else:
            self.memory.relabel(labels, features)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "best": self.best, "generator": self.generator.get_state(),
                "memory": None if self.memory is None else self.memory.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.best = state["epoch"], state["best"]
        self.generator.set_state(state["generator"])
        self.memory = None
        if state["memory"] is not None:
            memory = state["memory"]
            self.memory = ViewMemory(memory["features"], memory["labels"], **self.memory_options).to(self.device)
            self.memory.load_state_dict(memory)  # the stored values exactly (not normalised again)


class GCLTrainer(PseudoLabelTrainer):
    name = "gcl"

    def build(self) -> None:
        cfg, g = self.cfg, self.cfg.gcl
        if g.stage not in (2, 3):
            raise ConfigError(f"gcl.stage is {g.stage!r}; choose 2 (generator, identity encoder frozen) or 3 (all, "
                              f"with the memory)")
        if cfg.data.instances:
            raise ConfigError("trainer gcl draws plain shuffled batches (as GCL): set data.instances to 0")
        if not g.renders:
            raise ConfigError("gcl.renders is not set: write the mesh renders with python -m mesh.precompute "
                              "--config CONFIG --out DIR and set gcl.renders=DIR")
        try:
            self.load_training_set()
        except DatasetError as e:
            raise DatasetError(f"{e} (to try GCL without it: configs/synthetic-gcl-stage2.yaml)") from None
        self.renders = RenderSet(self.data, g.renders)
        self.stage3 = g.stage == 3
        self.net = build_gcl(cfg).to(self.device)
        self._init_from(g.init_from)
        net = self.net
        adam = dict(betas=(g.beta1, 0.999), weight_decay=cfg.optim.weight_decay)
        self.optimizers = {
            "dis": torch.optim.Adam(net.discriminator.parameters(), lr=cfg.dis.lr, **adam),
            "gen": torch.optim.Adam([*net.structure.parameters(), *net.decoder.parameters()], lr=cfg.gen.lr, **adam),
        }
        if self.stage3:
            reid = net.identity.reid
            self.optimizers["identity"] = build_optimizer(cfg.optim, [
                {"params": reid.backbone.parameters(), "lr_mult": cfg.optim.backbone_lr_mult},
                {"params": reid.new_parameters(), "lr_mult": 1.0}])
        else:
            net.identity.requires_grad_(False)  # no gradient is computed into it
        self.schedulers = {k: build_scheduler(o, cfg.optim) for k, o in self.optimizers.items()}
        check_positive(g.positive)  # now, not at the first clustering, where the memory is built
        memory_options = {"temperature": cfg.memory.temperature, "momentum": cfg.memory.momentum,
                          "negatives": g.negatives, "positive": g.positive}
        self.round = ViewRound(cfg.run.seed, memory_options, self.device)
        self.modules = {"gcl": self.net}
        self.stateful = {"round": self.round}
        self.epoch_iters = cfg.cluster.iters if self.stage3 else None  # stage 3 re-clusters (a hook) each epoch
        self._test_items = None

    def _init_from(self, path) -> None:
        """The identity encoder from a cluster_contrast run, or every network from a gcl run."""
        if not path:
            warnings.warn("gcl.init_from is not set: the identity encoder starts from model.pretrained, not "
                          "from a Cluster Contrast run", stacklevel=2)
            return
        if not Path(path).is_file():
            raise checkpoint.CheckpointError(f"gcl.init_from {path} does not exist; point it at a cluster_contrast "
                                             f"run's checkpoint (stage 2) or a gcl stage-2 checkpoint (stage 3)")
        state = checkpoint.read_checkpoint(path)
        kind = state.get("trainer")
        target, weights = {"cluster_contrast": (self.net.identity.reid, state["modules"].get("model")),
                           "gcl": (self.net, state["modules"].get("gcl"))}.get(kind, (None, None))
        if target is None:
            raise checkpoint.CheckpointError(f"gcl.init_from {path} was written by trainer {kind!r}; it must be a "
                                             f"cluster_contrast or a gcl checkpoint")
        try:
            target.load_state_dict(weights)
        except RuntimeError:
            raise checkpoint.CheckpointError(
                f"gcl.init_from {path} does not fit this config's networks; set model.* (and for a gcl checkpoint "
                f"gen.*, dis.*, gcl.stripes) as in the run that wrote it") from None
        if kind == "cluster_contrast" and self.stage3:
            warnings.warn(f"stage 3 starts from the cluster_contrast checkpoint {path}: the generator is untrained "
                          f"(run stage 2 first and start from its checkpoint)", stacklevel=2)

    # --- batches ----------------------------------------------------------------------------
    def embedding_network(self) -> nn.Module:
        return self.net

    def batches(self, start: int):
        """Stage 2: endless shuffled batches of every training image. Stage 3: the rest of the epoch
        that holds iteration `start`, shuffled batches of the images its clustering kept."""
        cfg = self.cfg
        pin = self.device.type == "cuda"
        if not self.stage3:
            dataset = RenderedImages(self.train_samples, self.renders.paths, cfg.data.height, cfg.data.width)
            return iter(train_loader(dataset, cfg.data, cfg.run.seed, start, pin_memory=pin))
        epoch, offset = divmod(start, self.epoch_iters)
        slots = torch.nonzero(self.round.memory.labels >= 0).flatten().tolist()
        dataset = RenderedImages([self.train_samples[i] for i in slots], self.renders.paths, cfg.data.height,
                                 cfg.data.width, slots=slots)
        loader = train_loader(dataset, cfg.data, cfg.run.seed * 100_000 + epoch, offset, pin_memory=pin)
        return itertools.islice(loader, self.epoch_iters - offset)

    @torch.no_grad()
    def recluster(self, epoch: int) -> None:
        features = self.extract_training_features(self.net.embed, self.net)
        clusters = self.cluster(features, epoch)
        clustered = int((clusters.labels >= 0).sum())
        if clusters.num_clusters == 0 or clustered < self.cfg.data.batch_size:
            raise TrainingStopped(f"epoch {epoch}: clustering left {clustered} images in "
                                  f"{clusters.num_clusters} clusters, fewer than a batch of {self.cfg.data.batch_size}; "
                                  f"raise cluster.rho / cluster.eps (now {clusters.eps:.3f})")
        self.round.start(epoch, features.to(self.device), torch.as_tensor(clusters.labels))

    # --- one iteration --------------------------------------------------------------------
    def train_step(self, batch) -> dict[str, float]:
        g, net = self.cfg.gcl, self.net
        if not self.stage3:
            net.identity.eval()  # frozen: running statistics as well as weights
        real = normalize(batch["image"].to(self.device, non_blocking=True))
        renders = batch["renders"].to(self.device, non_blocking=True)
        slots = batch["index"].to(self.device, non_blocking=True)
        n = len(real)
        angle = torch.randint(1, len(ANGLES), (n,), generator=self.round.generator).to(self.device)
        own = normalize_render(renders[:, :1])
        novel_render = normalize_render(renders[torch.arange(n, device=self.device), angle].unsqueeze(1))
        d_weight = GENERATED * g.gan_w

        # the discriminator's real half first, its gradient penalty's graph freed before the generator's is built
        with self.autocast():
            d_real, d_gp = real_terms(net.discriminator, real)
        self.accumulate(d_weight * (d_real + self.cfg.dis.gp_weight * d_gp), "dis")

        with self.autocast():
            structure, structure_novel = net.encode_structure(torch.cat([own, novel_render])).chunk(2)
            with torch.set_grad_enabled(self.stage3):
                encoded = net.encode_identity(real)
            code = encoded.code.detach()
            recon, novel = net.decode(torch.cat([structure, structure_novel]), torch.cat([code, code])).chunk(2)
            with running_statistics(net.identity):
                fixed = frozen(net.identity)  # the image losses reach the generated images only
                again = fixed(novel)
                cycle = net.decode(structure, again.code)
                codes_back = fixed(torch.cat([recon, cycle])).code
                if self.stage3:  # the memory trains the encoder on the generated view (and the generator)
                    novel_embedding = net.encode_identity(novel).embedding
        recon, novel, cycle = recon.float(), novel.float(), cycle.float()
        fakes = torch.cat([recon, novel, cycle])

        # discriminator step: its fake half, on the detached generated images
        with self.autocast():
            d_fake = lsgan_fake(net.discriminator(fakes.detach()))
        self.optimize(d_weight * d_fake, "dis")

        # generator (+ identity encoder) step
        target = code.float()
        with self.autocast():
            losses = {"adv": lsgan_generator(frozen(net.discriminator)(fakes))}
        losses.update({
            "recon_x": F.l1_loss(recon, real),
            "cycle": F.l1_loss(cycle, real),
            "code": sum(F.l1_loss(c.float(), target) for c in codes_back.chunk(2)),
        })
        total = (GENERATED * g.gan_w * losses["adv"] + g.recon_x_w * losses["recon_x"]
                 + g.cycle_w * losses["cycle"] + g.code_w * losses["code"])
        if self.stage3:
            terms = self.round.memory.loss(encoded.embedding, novel_embedding, slots, self.round.generator)
            losses.update({f"memory_{k}": v for k, v in terms.items()})
            memory = g.view_w * (terms["instance"] + terms["view"]) + terms["original"]
            total = total + g.memory_w * memory
        self.optimize(total, "gen", *(["identity"] if self.stage3 else []))
        if self.stage3:
            self.round.memory.update(distributed.all_gather_rows(encoded.embedding.detach().float()),
                                     distributed.all_gather_rows(slots))

        self._last = {"real": real, "own": own, "recon": recon.detach(), "novel_render": novel_render,
                      "novel": novel.detach(), "cycle": cycle.detach()}
        return {"loss": total.item(), "dis": (d_real + d_fake).item(), "dis_gp": d_gp.item(),
                **{k: v.item() for k, v in losses.items()}}

    # --- pictures and evaluation ----------------------------------------------------------
    def images(self) -> dict[str, torch.Tensor]:
        """train: image, its render, reconstruction, the novel render, novel view, cycle;
        test: query images and their people drawn at every angle."""
        last = self._last
        k = min(GRID_COLUMNS, len(last["real"]))
        rows = [last["real"], _render_rgb(last["own"]), last["recon"], _render_rgb(last["novel_render"]),
                last["novel"], last["cycle"]]
        grids = {"train/views": image_grid([r[:k] for r in rows], k)}
        items = self._test_batch()
        if items is not None:
            images, renders = items
            self.net.eval()
            with self.autocast():
                views = novel_views(self.net, images, renders).float()  # (B, A, 3, H, W) in [0, 1]
            rows = torch.cat([denormalize(images).unsqueeze(1), views], 1).transpose(0, 1).flatten(0, 1)
            grids["test/views"] = make_grid(rows.cpu(), nrow=len(images), padding=2).unsqueeze(0)
        return grids

    def _test_batch(self):
        """Up to 8 query images of distinct identities with their renders, fixed for the run."""
        if self._test_items is None:
            picked = first_per_identity(self.data.query)[:GRID_COLUMNS]
            if not picked:
                return None
            dataset = RenderedImages(picked, self.renders.paths, self.cfg.data.height, self.cfg.data.width)
            items = [dataset[i] for i in range(len(picked))]
            self._test_items = (normalize(torch.stack([it["image"] for it in items])),
                                torch.stack([it["renders"] for it in items]))
        return tuple(t.to(self.device) for t in self._test_items)

    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        self.net.eval()
        rerank = self.cfg.test.rerank if rerank is None else rerank
        return evaluate_embedding(self.net.embed, self.data, self.cfg.data, self.device, flip=self.cfg.test.flip,
                                  rerank=rerank, autocast_dtype=self.amp_dtype)


@contextmanager
def running_statistics(module: nn.Module):
    """Inside the block BatchNorm layers normalise with their running statistics and leave them
    as they are: generated images pass through the identity encoder (and train it) without
    changing the statistics its features on real images are normalised with. (The reference
    lets them in, so three of every four batches that set the test-time statistics are
    generated.)"""
    norms = [(m, m.training) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m, _ in norms:
        m.eval()
    try:
        yield
    finally:
        for m, mode in norms:
            m.train(mode)


def _render_rgb(renders: torch.Tensor) -> torch.Tensor:
    """[-1, 1] grey renders shown in the normalised image space (so one grid takes both)."""
    return normalize(((renders + 1) * 127.5).round().clamp(0, 255).expand(-1, 3, -1, -1))

