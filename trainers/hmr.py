"""`trainer: hmr` — the HMR regressor (`mesh.hmr`) trained on the synthetic world's ground truth.

Losses (weights in the `hmr` config section): per-vertex L1 and 3D-joint squared error of the
pelvis-aligned bodies (metres), squared error of the 24 joints projected by the predicted
weak-perspective camera against where the image shows them (crop NDC), of the 24 rotation
matrices, and of the 10 shape coefficients. Evaluation on the test images (query + gallery):
mean per-vertex and per-joint error of the pelvis-aligned bodies in millimetres (the body
model is in metres) and the mean 2D joint error in pixels.
"""
from __future__ import annotations

import torch

from mesh import load_body_model
from mesh.cameras import WeakPerspectiveCamera, pixel_to_ndc
from mesh.hmr import HMR, hmr_input
from mesh.spin import load_hmr_weights, read_mean_params
from mesh.views import pose_body, render_grey
from reid_data import DatasetError, ImageDataset, build_dataset, test_loader, train_loader
from reid_data.synthetic.ground_truth import load_ground_truth
from reid_data.synthetic.hmr_targets import hmr_targets
from reid_data.transforms import normalize

from .base import Trainer
from .optim import build_optimizer, build_scheduler

BACKBONE = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def build_hmr(cfg) -> HMR:
    """The regressor a config describes, with its `hmr.checkpoint` weights when given."""
    h = cfg.hmr
    mean = read_mean_params(h.mean_params) if h.mean_params else None
    model = HMR(cfg.model.backbone, cfg.model.pretrained, mean, h.iterations)
    return load_hmr_weights(model, h.checkpoint) if h.checkpoint else model


def keypoints_ndc(joints, cam, height: int, width: int):
    """Joints (B, J, 3) through weak-perspective cameras (B, 3) → crop NDC (B, J, 2)."""
    pixels = WeakPerspectiveCamera(cam).project_camera(joints, height, width)[..., :2]
    return pixel_to_ndc(pixels, height, width)


def aligned(vertices, joints):
    """Vertices and joints relative to the pelvis (joint 0)."""
    root = joints[:, :1]
    return vertices - root, joints - root


def hmr_losses(body, out, target, height: int, width: int) -> dict[str, torch.Tensor]:
    pv, pj = aligned(*pose_body(body, out.rotmat.float(), out.betas.float()))
    with torch.no_grad():
        tv, tj = aligned(*pose_body(body, target["rotmat"], target["betas"]))
    kp = keypoints_ndc(pj, out.cam.float(), height, width)
    return {
        "vertex": (pv - tv).abs().mean(),
        "joint": (pj - tj).pow(2).sum(-1).mean(),
        "keypoint": (kp - target["keypoints"]).pow(2).sum(-1).mean(),
        "pose": (out.rotmat.float() - target["rotmat"]).pow(2).mean(),
        "shape": (out.betas.float() - target["betas"]).pow(2).mean(),
    }


class HMRTrainer(Trainer):
    name = "hmr"

    def build(self) -> None:
        cfg = self.cfg
        self.data = build_dataset(cfg.data.dataset, cfg.data.root, train_split=cfg.data.train_split,
                                  skip_unreadable=cfg.data.skip_unreadable)
        try:
            self.gt = load_ground_truth(self.data.root)
        except FileNotFoundError:
            raise DatasetError(f"trainer hmr learns from the synthetic world's ground truth, which "
                               f"{self.data.name} at {self.data.root} does not have; set "
                               f"data.dataset: synthetic") from None
        self.body = load_body_model(cfg.hmr.body_model, device=self.device, create_transl=False)
        self.body.requires_grad_(False)
        self.model = build_hmr(cfg).to(self.device)
        trunk = [p for n, p in self.model.named_parameters() if n.split(".")[0] in BACKBONE]
        head = [p for n, p in self.model.named_parameters() if n.split(".")[0] not in BACKBONE]
        optimizer = build_optimizer(cfg.optim, [
            {"params": trunk, "lr_mult": cfg.optim.backbone_lr_mult},
            {"params": head, "lr_mult": 1.0}])
        self.weights = {k: cfg.hmr[f"{k}_w"] for k in ("vertex", "joint", "keypoint", "pose", "shape")}
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

    @torch.no_grad()
    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        """Mean errors over the test images (query + gallery) of the world."""
        self.model.eval()
        samples = self.data.query + self.data.gallery
        loader = test_loader(samples, self.cfg.data)
        sums = torch.zeros(3, dtype=torch.float64)
        for batch in loader:
            target = self._targets(samples, batch["index"])
            with self.autocast():
                out = self.model(self._input(batch["image"]))
            pv, pj = aligned(*pose_body(self.body, out.rotmat.float(), out.betas.float()))
            tv, tj = aligned(*pose_body(self.body, target["rotmat"], target["betas"]))
            kp = keypoints_ndc(pj, out.cam.float(), self.gt.height, self.gt.width)
            sums += torch.stack([(pv - tv).norm(dim=-1).mean(1).sum(),
                                 (pj - tj).norm(dim=-1).mean(1).sum(),
                                 (kp - target["keypoints"]).norm(dim=-1).mean(1).sum()]).double().cpu()
        mpve, mpjpe, kp = (sums / len(samples)).tolist()
        half = max(self.gt.height, self.gt.width) / 2     # NDC units → pixels
        return {"mpve_mm": 1000 * mpve, "mpjpe_mm": 1000 * mpjpe, "keypoint_px": half * kp}
