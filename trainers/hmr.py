"""`trainer: hmr` — the HMR regressor (`models.hmr`) trained on the synthetic world's ground truth.

Losses (weights in the `hmr` config section): per-vertex L1 and 3D-joint squared error of the
pelvis-aligned bodies (metres), squared error of the 24 joints projected by the predicted
weak-perspective camera against where the image shows them (crop NDC; the joints as posed, not
pelvis-aligned: the renders draw the posed body through that camera), of the 24 rotation
matrices (and of the global one alone, `orient_w`), and of the 10 shape coefficients. Evaluation
on the test images (query + gallery): `mesh.hmr_errors.body_errors`.
"""
from __future__ import annotations

import torch

from mesh import load_body_model
from mesh.hmr_errors import aligned, body_errors, regressed_body
from mesh.views import pose_body, render_grey
from models.hmr import build_hmr, hmr_input
from reid_data import DatasetError, ImageDataset, dataset_from_config, train_loader
from reid_data.synthetic.ground_truth import load_ground_truth
from reid_data.synthetic.hmr_targets import hmr_targets
from reid_data.transforms import normalize
from runtime.checkpoint import hmr_weights

from .base import Trainer
from .optim import build_optimizer, build_scheduler

BACKBONE = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def hmr_losses(body, out, target, height: int, width: int) -> dict[str, torch.Tensor]:
    pv, pj, kp = regressed_body(body, out, height, width)
    with torch.no_grad():
        tv, tj = aligned(*pose_body(body, target["rotmat"], target["betas"]))
    return {
        "vertex": (pv - tv).abs().mean(),
        "joint": (pj - tj).pow(2).sum(-1).mean(),
        "keypoint": (kp - target["keypoints"]).pow(2).sum(-1).mean(),
        "pose": (out.rotmat.float() - target["rotmat"]).pow(2).mean(),
        # the global orientation alone: 1/24 of the pose term, yet what decides which way a body faces
        "orient": (out.rotmat[:, 0].float() - target["rotmat"][:, 0]).pow(2).mean(),
        "shape": (out.betas.float() - target["betas"]).pow(2).mean(),
    }


class HMRTrainer(Trainer):
    name = "hmr"

    def build(self) -> None:
        cfg = self.cfg
        self.data = dataset_from_config(cfg.data)
        try:
            self.gt = load_ground_truth(self.data.root)
        except FileNotFoundError:
            raise DatasetError(f"trainer hmr learns from the synthetic world's ground truth, which "
                               f"{self.data.name} at {self.data.root} does not have; set "
                               f"data.dataset: synthetic") from None
        self.body = load_body_model(cfg.hmr.body_model, device=self.device, create_transl=False)
        self.body.requires_grad_(False)
        h = cfg.hmr
        self.model = build_hmr(cfg.model.backbone, cfg.model.pretrained, h.mean_params, h.iterations,
                               hmr_weights(h.checkpoint) if h.checkpoint else None, h.checkpoint).to(self.device)
        trunk = [p for n, p in self.model.named_parameters() if n.split(".")[0] in BACKBONE]
        head = [p for n, p in self.model.named_parameters() if n.split(".")[0] not in BACKBONE]
        optimizer = build_optimizer(cfg.optim, [
            {"params": trunk, "lr_mult": cfg.optim.backbone_lr_mult},
            {"params": head, "lr_mult": 1.0}])
        self.weights = {k: cfg.hmr[f"{k}_w"] for k in ("vertex", "joint", "keypoint", "pose", "orient", "shape")}
        self.modules = {"model": self.model}
        self.optimizers = {"model": optimizer}
        self.schedulers = {"model": build_scheduler(optimizer, cfg.optim)}

    def batches(self, start: int):
        cfg = self.cfg
        dataset = ImageDataset(self.data.train, cfg.data.height, cfg.data.width)
        return iter(train_loader(dataset, cfg.data, cfg.run.seed, start,
                                 pin_memory=self.device.type == "cuda"))

    def _targets(self, samples, indices) -> dict[str, torch.Tensor]:
        # NDC is relative to the crop, so targets hold at any loading size of the same aspect.
        names = [samples[i].path for i in indices.tolist()]
        return {k: v.to(self.device) for k, v in hmr_targets(self.gt, names).items()}

    def _input(self, images):
        return hmr_input(normalize(images.to(self.device, non_blocking=True)), self.cfg.hmr.input_size)

    def train_step(self, batch) -> dict[str, float]:
        target = self._targets(self.data.train, batch["index"])
        with self.autocast():
            out = self.model(self._input(batch["image"]))
        losses = hmr_losses(self.body, out, target, self.gt.height, self.gt.width)
        total = sum(self.weights[k] * v for k, v in losses.items())
        self.optimize(total, "model")
        self._last = (batch["image"][:8], out.rotmat[:8].detach().float(),
                      out.betas[:8].detach().float(), out.cam[:8].detach().float())
        return {"loss": total.item(), **{k: v.item() for k, v in losses.items()}}

    def images(self) -> dict[str, torch.Tensor]:
        images, rotmat, betas, cam = self._last
        with torch.no_grad():
            verts, _ = pose_body(self.body, rotmat, betas)
            grey = render_grey(verts, self.body.faces_tensor, cam, self.gt.height, self.gt.width)
        return {"train/images": images.float() / 255, "train/meshes": grey.expand(-1, 3, -1, -1).cpu()}

    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        """Mean errors over the test images (query + gallery) of the world."""
        self.model.eval()
        return body_errors(self.model, self.body, self.gt, self.data.query + self.data.gallery, self.cfg.data,
                           self.cfg.hmr.input_size, self.device, self.autocast)
