"""`trainer: dgnet` — DG-Net: joint discriminative and generative re-ID learning (Zheng et al., CVPR 2019).

Each iteration loads B identities for side a and B for side b (all 2B distinct), each with a positive
(another image of the same person): data.batch_size = 4B images, as for every trainer the images of
one step. The generator re-draws every image from its
structure and its own, its positive's, and the other side's appearance code; the discriminator is
stepped on those cross-identity images, then the generator and the appearance encoder together.

Terms that need a network frozen (appearance and structure re-encoding of generated images, the
discriminator's verdict for the generator, the teacher) call it through `frozen`: its parameters
detached in place, never a copy of the network; where the appearance encoder also runs live on the
same generated images, the frozen terms share that pass (`input_gradient_only`). The warm-up weights
are functions of the iteration.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from configs.loader import Config, ConfigError
from models import build_dgnet
from reid_data import BatchAugment, DatasetError, ImageDataset, dataset_from_config, normalize, train_loader
from reid_data.synthetic.ground_truth import load_ground_truth
from reid_eval.evaluator import evaluate_embedding
from reid_eval.generation.swap import SwapBenchmark, flat
from runtime import checkpoint

from .base import Trainer
from .dgnet_losses import ramp, teacher_targets
from .gan import first_per_identity, frozen, image_grid, input_gradient_only, lsgan_fake, lsgan_generator, real_terms
from .optim import build_optimizer, build_scheduler

# The a and b sides' losses are summed in the paper; ours are means over both sides at once.
SIDES = 2
GRID_COLUMNS = 8


class DGNetTrainer(Trainer):
    name = "dgnet"

    def build(self) -> None:
        cfg, d = self.cfg, self.cfg.dgnet
        try:
            self.data = dataset_from_config(cfg.data)
        except DatasetError as e:
            raise DatasetError(f"{e} (to try DG-Net without it: configs/synthetic-dgnet.yaml)") from None
        self.num_classes = self.data.num_train_pids
        if cfg.data.batch_size % (2 * SIDES) or cfg.data.batch_size <= 0:
            raise ConfigError(f"data.batch_size is {cfg.data.batch_size}; a DG-Net batch is a multiple of 4 images "
                              f"(identities on sides a and b, each with a positive; the paper's 8 a side: 32)")
        per_side = cfg.data.batch_size // (2 * SIDES)
        if self.num_classes < SIDES * per_side:
            raise ConfigError(f"a DG-Net batch of {cfg.data.batch_size} images needs {SIDES * per_side} "
                              f"identities ({per_side} on each side) but the data have {self.num_classes}")
        self.net = build_dgnet(cfg, self.num_classes).to(self.device)
        needs_teacher = d.teacher_style in ("soft", "one_hot", "two_label")
        teacher = load_teacher(d.teacher, self.num_classes, self.device) if needs_teacher or d.init_from_teacher \
            else None
        if d.init_from_teacher:
            init_from_teacher(self.net.appearance.backbone, teacher.backbone, d.teacher)
        self.teacher = teacher if needs_teacher else None
        net = self.net
        adam = dict(betas=(d.beta1, 0.999), weight_decay=cfg.optim.weight_decay)
        self.optimizers = {
            "dis": torch.optim.Adam(net.discriminator.parameters(), lr=cfg.dis.lr, **adam),
            "gen": torch.optim.Adam([*net.structure.parameters(), *net.decoder.parameters()], lr=cfg.gen.lr, **adam),
            "appearance": build_optimizer(cfg.optim, [
                {"params": net.appearance.backbone.parameters(), "lr_mult": cfg.optim.backbone_lr_mult},
                {"params": net.appearance.new_parameters(), "lr_mult": 1.0}]),
        }
        self.schedulers = {k: build_scheduler(o, cfg.optim) for k, o in self.optimizers.items()}
        # Random erasing touches only the identity losses' inputs, so it is a separate step.
        self.augment = BatchAugment(cfg.augment.flip, cfg.augment.pad, 0.0, seed=cfg.run.seed)
        self.eraser = BatchAugment(0.0, 0, cfg.augment.erasing, seed=cfg.run.seed + 1)
        self.modules = {"dgnet": self.net}
        self.stateful = {"augment": self.augment, "eraser": self.eraser}
        self._test_images = None
        self._swaps = swap_watch(self.data, cfg, self.device) if self.is_main else None

    def batches(self, start: int):
        cfg = self.cfg
        # data.batch_size = 4B images: 2B identities × 2 (anchor and positive), a's identities then b's.
        data_cfg = Config({**cfg.data.to_dict(), "instances": 2})
        dataset = ImageDataset(self.data.train, cfg.data.height, cfg.data.width)
        return iter(train_loader(dataset, data_cfg, cfg.run.seed, start, pin_memory=self.device.type == "cuda"))

    def weights(self, iteration: int) -> dict[str, float]:
        """The ramped loss weights at `iteration` (a pure function of it, so resuming continues the ramp)."""
        d = self.cfg.dgnet
        code = ramp(iteration, d.warm_iter, d.warm_scale, d.max_w)
        return {"recon_f": code, "recon_s": code, "cycle": ramp(iteration, d.warm_iter, d.warm_scale, d.max_cyc_w),
                "teacher": ramp(iteration, d.warm_teacher_iter, d.warm_scale, d.max_teacher_w)}

    def train_step(self, batch) -> dict[str, float]:
        d, net = self.cfg.dgnet, self.net
        images = self.augment(batch["image"].to(self.device, non_blocking=True))
        pids = batch["pid"].to(self.device, non_blocking=True)
        real, positive, ids = images[0::2], images[1::2], pids[0::2]  # sides a then b
        ids_swapped = other_side(ids)
        w = self.weights(self.iteration)
        d_weight = SIDES * d.gan_w

        # the discriminator's real half first: its gradient penalty's double-backward graph is freed
        # before the generator's graph is built (the step's peak memory), the fake half steps below
        with self.autocast():
            d_real, d_gp = real_terms(net.discriminator, real)
        self.accumulate(d_weight * (d_real + self.cfg.dis.gp_weight * d_gp), "dis")

        with self.autocast():
            both = torch.cat([real, positive])
            erased = self.eraser.erase(both) if self.cfg.augment.erasing > 0 else both
            encoded = net.encode_appearance(erased)
            # The code the decoder gets is detached, as in the paper's code: the appearance encoder
            # learns from the identity losses, the image losses train the generator around it.
            codes = clean_codes(net.appearance, both, erased, encoded.code.detach())
            code, code_pos = codes.chunk(2)
            structure = net.encode_structure(real)
            n = len(real)
            # self, positive and cross reconstructions in one batch; fake[i] has i's appearance, its partner's structure
            i = torch.arange(n, device=real.device)
            out = net.decode(structure, torch.cat([code, code_pos, code]), index=torch.cat([i, i, other_side(i)]))
            recon, recon_pos, fake = out.float().split(n)

        # discriminator step: its fake half, on the detached cross-identity images
        with self.autocast():
            d_fake = lsgan_fake(net.discriminator(fake.detach()))
        self.optimize(d_weight * d_fake, "dis")

        # generator + appearance encoder step
        with self.autocast():
            # The generated images go through the appearance encoder's backbone once: live for the student
            # (teacher terms: the encoder learns, the images are fixed inputs), and seen through frozen
            # parameters by the terms that train the generator (gradients reach the generated images only).
            if w["teacher"] > 0:
                fake_in = fake.detach().requires_grad_(True)
                fmap = net.appearance.backbone(fake_in)
                student = net.appearance(fmap, backbone_map=True)
                fmap_frozen = input_gradient_only(fmap, fake_in, fake)
            else:  # no student: a frozen call, which also leaves BN's running statistics alone
                fmap_frozen = frozen(net.appearance.backbone)(fake)
            again = frozen(net.appearance)(fmap_frozen, dropout=False, backbone_map=True)
            losses = {
                "adv": lsgan_generator(frozen(net.discriminator)(fake)),
                "recon_x": F.l1_loss(recon, real),
                "recon_xp": F.l1_loss(recon_pos, real),
                "id": F.cross_entropy(encoded.logits[:n].float(), ids),
                "pid": F.cross_entropy(encoded.logits[n:].float(), ids),
                "fine_id": F.cross_entropy(encoded.fine_logits[:n].float(), ids),
                "recon_id": F.cross_entropy(again.logits.float(), ids),
            }
            if w["recon_f"] > 0:
                losses["recon_f"] = F.l1_loss(again.code.float(), code.float())
            if w["recon_s"] > 0 or w["cycle"] > 0:
                if torch.rand(()) < d.encoder_again:  # the encoder learns; the image is a fixed input
                    structure_again = net.encode_structure(fake.detach())
                else:  # the image learns through the frozen encoder
                    structure_again = frozen(net.structure)(fake)
                losses["recon_s"] = F.l1_loss(structure_again.float(), other_side(structure).detach().float())
                if w["cycle"] > 0:
                    cycle = net.decode(other_side(structure_again), again.code)
                    losses["cycle"] = F.l1_loss(cycle.float(), real)
            if w["teacher"] > 0:
                target = teacher_targets(frozen(self.teacher), fake.detach(), d.teacher_style, self.num_classes,
                                         ids, ids_swapped)
                losses["teacher"] = F.kl_div(student.logits.float().log_softmax(1), target, reduction="batchmean")
                losses["fine_structure"] = F.cross_entropy(student.fine_logits.float(), ids_swapped)
        total = (d.gan_w * losses["adv"] + d.recon_x_w * losses["recon_x"] + d.recon_xp_w * losses["recon_xp"]
                 + d.id_w * (losses["id"] + w["teacher"] * d.B_w * losses["fine_id"])
                 + d.pid_w * losses["pid"] + d.recon_id_w * losses["recon_id"]
                 + w["recon_f"] * losses.get("recon_f", 0.0) + w["recon_s"] * losses.get("recon_s", 0.0)
                 + w["cycle"] * losses.get("cycle", 0.0)
                 + w["teacher"] * (losses.get("teacher", 0.0) + d.B_w * losses.get("fine_structure", 0.0)))
        self.optimize(SIDES * total, "gen", "appearance")

        self._last = {"real": real.detach(), "recon": recon.detach(), "fake": fake.detach()}
        accuracy = (encoded.logits[:n].argmax(1) == ids).float().mean()
        return {"loss": SIDES * total.item(), "dis": (d_real + d_fake).item(), "dis_gp": d_gp.item(),
                **{k: v.item() for k, v in losses.items()}, "accuracy": accuracy.item(),
                **{f"w_{k}": v for k, v in w.items()}}

    def images(self) -> dict[str, torch.Tensor]:
        """Rows: appearance donors, their reconstructions, structure donors, and the swaps (the
        structure of the row above with the appearance of the first row)."""
        last, n = self._last, GRID_COLUMNS
        half = len(last["real"]) // 2
        k = min(n, half)
        train = [last["real"][:k], last["recon"][:k], last["real"][half:half + k], last["fake"][:k]]
        grids = {"train/swaps": image_grid(train, k)}
        if self._swaps is not None:
            self.net.eval()
            bench = self._swaps.bench
            with self.autocast():
                generated = bench.model_images(self.net.swap, self.device, self.cfg.data.test_batch_size)
            rows = bench.truth_rows(generated, GRID_COLUMNS)
            grids["test/truth"] = make_grid(rows.flatten(0, 1), nrow=rows.shape[1], padding=2).unsqueeze(0)
        test = self._test_batch()
        if test is not None:
            self.net.eval()
            with torch.no_grad(), self.autocast():
                a, s = test.chunk(2)
                rows = [a, self.net.swap(a, a), s, self.net.swap(s, a)]
            grids["test/swaps"] = image_grid([r.float() for r in rows], len(a))
        return grids

    def _test_batch(self) -> torch.Tensor | None:
        """2·k query images of distinct identities, fixed for the run (k ≤ 8)."""
        if self._test_images is None:
            picked = first_per_identity(self.data.query)
            k = min(GRID_COLUMNS, len(picked) // 2)
            if k == 0:
                return None
            dataset = ImageDataset(picked[:2 * k], self.cfg.data.height, self.cfg.data.width)
            self._test_images = normalize(torch.stack([dataset[i]["image"] for i in range(2 * k)]))
        return self._test_images.to(self.device)

    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        self.net.eval()
        rerank = self.cfg.test.rerank if rerank is None else rerank
        results = evaluate_embedding(self.net.embed, self.data, self.cfg.data,
                                     self.device, flip=self.cfg.test.flip, rerank=rerank,
                                     autocast_dtype=self.amp_dtype)
        if self._swaps is not None:
            with self.autocast():
                scores, _ = self._swaps.bench.score(self.net.swap, self._swaps.embed, self.device,
                                                    self.cfg.data.test_batch_size, self.cfg.test.flip)
            results.update(flat(scores))
        return results


class SwapWatch(NamedTuple):
    bench: SwapBenchmark
    embed: object  # the teacher's embedding in eval mode: the judge of the swaps' identities


def swap_watch(data, cfg, device: torch.device) -> SwapWatch | None:
    """The fixed swap pairs scored at every evaluation (dgnet.swap_pairs), when the data set is a
    synthetic world with its ground truth and a teacher is named; else None."""
    d = cfg.dgnet
    if d.swap_pairs <= 0 or not d.teacher:
        return None
    try:
        world = load_ground_truth(data.root)
    except FileNotFoundError:
        return None
    judge = load_teacher(d.teacher, data.num_train_pids, device).eval()
    bench = SwapBenchmark(data, world, cfg.data, d.swap_pairs, cfg.run.seed)
    return SwapWatch(bench, judge.embed)


def load_teacher(path, num_classes: int, device: torch.device):
    """The frozen re-ID teacher from a `teacher` run's checkpoint: eval mode except that BN uses the
    statistics of the batch (generated images), as the paper's code."""
    if not path or not Path(path).is_file():
        raise checkpoint.CheckpointError(
            f"DG-Net needs a teacher checkpoint but dgnet.teacher {'is not set' if not path else f'({path}) does not exist'}; "
            f"train one first (e.g. python train.py --config configs/synthetic-teacher.yaml) or point dgnet.teacher "
            f"at its checkpoints/last.pt")
    teacher = checkpoint.load_network(path, ("teacher",), device, user="dgnet.teacher needs").model
    classes = teacher.head.classifier.weight.shape[0]
    if classes != num_classes:
        raise checkpoint.CheckpointError(f"the teacher {path} knows {classes} identities but the training set has "
                                         f"{num_classes}; train the teacher on the same data set")
    teacher.requires_grad_(False)
    for m in teacher.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train()
    return teacher


def init_from_teacher(backbone: torch.nn.Module, teacher_backbone: torch.nn.Module, path) -> None:
    """Start the appearance encoder's backbone from the teacher's: where no ImageNet weights can be
    had (the synthetic configs), this stands in for the paper's ImageNet start."""
    mine, theirs = backbone.layer4[0].downsample[0].stride, teacher_backbone.layer4[0].downsample[0].stride
    if backbone.name != teacher_backbone.name or mine != theirs:
        raise ConfigError(f"dgnet.init_from_teacher needs the teacher's backbone, but the teacher {path} is a "
                          f"{teacher_backbone.name} with last stride {theirs[0]} and model.backbone is a "
                          f"{backbone.name} with last stride {mine[0]}; match them or set it to false")
    backbone.load_state_dict(teacher_backbone.state_dict())


def clean_codes(appearance, images: torch.Tensor, erased: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The appearance codes of the un-erased `images`, given `codes` of `erased` (the identity losses'
    inputs): an image that erasing left unchanged keeps its code; only the changed ones are encoded again,
    without gradients and without touching BN's running statistics (so they move once per iteration)."""
    changed = (erased != images).flatten(1).any(1)
    if not changed.any():
        return codes
    with torch.no_grad():
        codes = codes.clone()
        codes[changed] = appearance.stripe_code(frozen(appearance.backbone)(images[changed])).to(codes.dtype)
    return codes


def other_side(batch: torch.Tensor) -> torch.Tensor:
    """Item i of side a ↔ item i of side b (the batch is side a, then side b)."""
    return batch.roll(len(batch) // 2, dims=0)
