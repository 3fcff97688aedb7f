"""Image formation: posed people → person crops, as a camera of the world sees them.

One image is described by a *record* (a dict; the ground-truth sidecar stores it) and the
person's `Appearance`. In order:

1. pose: the body with the identity's shape, the record's pose, turned by its yaw about its
   centre and stood at the origin of the ground (`body.WorldBody.pose`);
2. camera: the rig's rotation and, as translation, where the person stands on the rig's
   ground (``ground``); its full-frame intrinsics (focal, centre of the 1280 × 720 frame);
3. crop: the person's box in the full frame, a detector-like box around it with the 2:1
   aspect ratio (``crop``: x0, y0, w, h in full-frame pixels); the crop's intrinsics follow
   (focal and principal point scaled to the output size);
4. render at ``supersample`` × the output size (lit with the rig's and the image's light),
   over the rig's background seen through the same box, with a soft shadow under the feet
   and an occluder in front when the record has one; area-downsampled to the output size;
5. degrade: the camera's effective resolution for this box, blur, colour response (gains,
   saturation, contrast, brightness × the image's exposure), pixel noise; quantised to 8 bit.

All operations are per image and deterministic, so re-forming a record gives the same pixels;
`ground_truth.render_ground_truth` re-forms a record at another yaw.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mesh.cameras import PerspectiveCamera
from mesh.rasterizer import render

from .body import world_body
from .clothing import LOWER, SHOES, UPPER, BodyRegions, paint
from .identities import Appearance
from .scenes import (FULL_H, FULL_W, CameraRig, color_pipeline, gaussian_blur, occluder_layer,
                     panorama, resample)

REFERENCE_HEIGHT = 128      # image-quality figures (blur, effective resolution) are per 128 rows


class Imager:
    """Forms the images of one world (its rigs, output size and supersampling)."""

    def __init__(self, rigs: list[CameraRig], height: int, width: int, supersample: int = 2,
                 body_model=None):
        self.rigs = rigs
        self.height, self.width = int(height), int(width)
        self.supersample = int(supersample)
        self.body = world_body(body_model)
        self.regions = BodyRegions(self.body)
        self._panoramas: dict[int, torch.Tensor] = {}
        self._people: dict[int, tuple] = {}

    # ----------------------------------------------------------------------------- geometry

    def pose(self, appearances: list[Appearance], records: list[dict], yaw=None,
             with_joints: bool = False):
        """Posed vertices (B, V, 3) at each record's yaw (or at ``yaw`` (B,) instead), and the
        translations (B, 3) that stood them at the origin (and, ``with_joints``, the joints;
        see `body.WorldBody.pose`)."""
        betas = np.array([a.betas for a in appearances], np.float64)
        poses = np.array([r["pose"] for r in records], np.float64).reshape(len(records), -1)
        yaws = np.array([r["yaw"] for r in records]) if yaw is None else np.asarray(yaw)
        offsets = np.stack([self._hair(a) for a in appearances])
        return self.body.pose(betas, poses, yaws, bags=[a.bag for a in appearances],
                              hair_offset=offsets, with_joints=with_joints)

    def extrinsics(self, record: dict):
        """World → camera (R (3, 3), t (3,)) of the record's camera; the person stands at the
        world origin, i.e. at ``ground`` on the rig's floor."""
        rig = self.rigs[record["camid"]]
        R = rig.rotation()
        gx, gz = record["ground"]
        t = R @ (np.array([gx, 0.0, gz]) - rig.eye())
        return R, t

    def full_frame_boxes(self, verts: torch.Tensor, records: list[dict]) -> np.ndarray:
        """(B, 4) person boxes (x0, y0, x1, y1) in full-frame pixels."""
        out = np.zeros((len(records), 4))
        for i, rec in enumerate(records):
            R, t = self.extrinsics(rec)
            f = self.rigs[rec["camid"]].focal
            pc = verts[i].double().numpy() @ R.T + t
            uv = f * pc[:, :2] / pc[:, 2:3] + np.array([FULL_W / 2, FULL_H / 2])
            out[i] = [uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()]
        return out

    def intrinsics(self, record: dict, scale: float = 1.0):
        """(focal, (cx, cy)) of the record's crop at ``scale`` × the output size."""
        x0, y0, w, h = record["crop"]
        k = self.height / h * scale
        f = self.rigs[record["camid"]].focal * k
        return f, ((FULL_W / 2 - x0) * k, (FULL_H / 2 - y0) * k)

    def camera(self, records: list[dict], scale: float) -> PerspectiveCamera:
        Rs, ts, fs, cs = [], [], [], []
        for rec in records:
            R, t = self.extrinsics(rec)
            f, c = self.intrinsics(rec, scale)
            Rs.append(R), ts.append(t), fs.append(f), cs.append(c)
        as_t = lambda a: torch.as_tensor(np.array(a), dtype=torch.float32)  # noqa: E731
        return PerspectiveCamera(focal=as_t(fs), principal=as_t(cs), R=as_t(Rs), t=as_t(ts))

    # ----------------------------------------------------------------------------- images

    def panorama(self, camid: int) -> torch.Tensor:
        if camid not in self._panoramas:
            scale = min(1.0, 0.5 * self.height / REFERENCE_HEIGHT)
            self._panoramas[camid] = torch.from_numpy(panorama(self.rigs[camid], scale))
        return self._panoramas[camid]

    def backgrounds(self, records: list[dict], h: int, w: int) -> torch.Tensor:
        """(B, 3, h, w): each camera's background seen through each record's crop box."""
        out = torch.empty(len(records), 3, h, w)
        by_cam: dict[int, list[int]] = {}
        for i, rec in enumerate(records):
            by_cam.setdefault(rec["camid"], []).append(i)
        for camid, idx in by_cam.items():
            theta = []
            for i in idx:
                x0, y0, bw, bh = records[i]["crop"]
                theta.append([[bw / FULL_W, 0.0, (2 * x0 + bw) / FULL_W - 1],
                              [0.0, bh / FULL_H, (2 * y0 + bh) / FULL_H - 1]])
            theta = torch.tensor(theta, dtype=torch.float32)
            grid = F.affine_grid(theta, (len(idx), 3, h, w), align_corners=False)
            pano = self.panorama(camid)[None].expand(len(idx), -1, -1, -1)
            out[idx] = F.grid_sample(pano, grid, mode="bilinear", padding_mode="border",
                                     align_corners=False)
        return out

    def shadows(self, records: list[dict], h: int, w: int) -> torch.Tensor:
        """(B, 1, h, w) darkening factors: a soft ellipse on the ground under the person."""
        out = torch.ones(len(records), 1, h, w)
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5,
                                torch.arange(w, dtype=torch.float32) + 0.5, indexing="ij")
        scale = h / self.height
        for i, rec in enumerate(records):
            R, t = self.extrinsics(rec)
            f, (cx, cy) = self.intrinsics(rec, scale)
            pts = np.array([[0, 0, 0], [0.35, 0, 0], [0, 0, 0.3]]) @ R.T + t
            uv = f * pts[:, :2] / pts[:, 2:3] + np.array([cx, cy])
            rx = max(abs(uv[1, 0] - uv[0, 0]), 1.0)
            ry = max(abs(uv[2, 1] - uv[0, 1]), 0.5)
            d2 = ((xx - uv[0, 0]) / rx) ** 2 + ((yy - uv[0, 1]) / ry) ** 2
            out[i, 0] = 1 - self.rigs[rec["camid"]].shadow * torch.exp(-1.5 * d2)
        return out

    def lights(self, records: list[dict]):
        rigs = [self.rigs[r["camid"]] for r in records]
        ambient = torch.tensor([[g.ambient * t for t in g.ambient_tint] for g in rigs])
        key_dir = torch.tensor([g.key_dir for g in rigs])
        key = torch.tensor([[r["look"]["key"]] for r in records])
        fill = torch.tensor([[g.fill] for g in rigs])
        return ambient, [(key_dir, key), ((0.0, -0.2, -1.0), fill)]

    def form(self, appearances: list[Appearance], records: list[dict], verts=None, *,
             mode: str = "rgb", background: bool = True, degrade: bool = True,
             noise: bool = True, occlusion: bool = True):
        """Images (B, 3, H, W) in [0, 1] and person masks (B, 1, H, W) of ``records``.

        ``verts``: posed vertices from `pose` (computed when None). ``mode="grey"`` renders the
        uniformly grey, Lambert-shaded body (GCL's structure image) with the renderer's
        default light, on black, without background or degradations."""
        if verts is None:
            verts, _ = self.pose(appearances, records)
        s = self.supersample
        hr, wr = self.height * s, self.width * s
        camera = self.camera(records, float(s))
        faces = self.body.faces_t
        if mode == "grey":
            out = render(verts, faces, camera, hr, wr, mode="grey")
            rgb, mask = out.rgb, out.mask
        else:
            colors = torch.as_tensor(np.stack([self._colors(a) for a in appearances]))
            ambient, lights = self.lights(records)
            out = render(verts, faces, camera, hr, wr, colors=colors, ambient=ambient,
                         lights=lights)
            rgb, mask = out.rgb, out.mask
            if background:
                bg = self.backgrounds(records, hr, wr) * self.shadows(records, hr, wr)
                rgb = rgb * mask + bg * (1 - mask)
            if occlusion:
                for i, rec in enumerate(records):
                    occ = rec["look"].get("occluder")
                    if occ:
                        layer, alpha = occluder_layer(occ, hr, wr)
                        rgb[i] = rgb[i] * (1 - alpha) + layer * alpha
        rgb = _downsample(rgb, self.height, self.width)
        mask = _downsample(mask, self.height, self.width)
        if mode == "grey" or not degrade:
            return rgb.clamp(0, 1), mask
        scale = self.height / REFERENCE_HEIGHT
        for i, rec in enumerate(records):
            rig = self.rigs[rec["camid"]]
            x = resample(rgb[i], rec["res"])
            x = gaussian_blur(x, rec["look"]["blur"] * scale)
            x = color_pipeline(x, rig, rec["look"]["exposure"])
            if noise:
                g = np.random.default_rng(rec["look"]["noise_seed"])
                x = x + torch.from_numpy(g.normal(0.0, rig.noise, x.shape).astype(np.float32))
            rgb[i] = x.clamp(0, 1)
        return rgb, mask

    def garments(self, appearances: list[Appearance], records: list[dict], verts=None,
                 occlusion: bool = True) -> torch.Tensor:
        """(B, 3, H, W) coverage in [0, 1] of the upper garment, the lower garment and the shoes
        (with socks) in each image, as `form` draws it (the occluder in front when the record has
        one and ``occlusion``)."""
        if verts is None:
            verts, _ = self.pose(appearances, records)
        s = self.supersample
        hr, wr = self.height * s, self.width * s
        parts = np.stack([self._per_person(a)[2] for a in appearances])
        onehot = torch.as_tensor(np.stack([parts == k for k in (UPPER, LOWER, SHOES)], -1),
                                 dtype=torch.float32)
        # unlit: every vertex shows its one-hot part as its colour
        out = render(verts, self.body.faces_t, self.camera(records, float(s)), hr, wr,
                     colors=onehot, ambient=1.0, lights=[]).rgb
        if occlusion:
            for i, rec in enumerate(records):
                occ = rec["look"].get("occluder")
                if occ:
                    out[i] = out[i] * (1 - occluder_layer(occ, hr, wr)[1])
        return _downsample(out, self.height, self.width).clamp(0, 1)

    def _colors(self, a: Appearance) -> np.ndarray:
        return self._per_person(a)[0]

    def _hair(self, a: Appearance) -> np.ndarray:
        return self._per_person(a)[1]

    def _per_person(self, a: Appearance):
        """(vertex colours, hair offsets, vertex parts) of a person, cached per `Appearance`
        object."""
        hit = self._people.get(id(a))
        if hit is None or hit[0] is not a:
            colors, parts = paint(a, self.regions)
            hit = (a, colors, self.regions.hair_offset(a), parts)
            if len(self._people) > 4096:
                self._people.clear()
            self._people[id(a)] = hit
        return hit[1:]


def _downsample(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] → (B, H, W, 3) uint8 (round half up, the same on every run)."""
    return (images.clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def effective_resolution(box_height: float, rig: CameraRig) -> float:
    """How finely the rig's sensor sampled a person box ``box_height`` full-frame pixels
    high, relative to the 128-row reference crop (1 = no loss)."""
    return float(min(1.0, box_height * rig.res_factor / REFERENCE_HEIGHT))

