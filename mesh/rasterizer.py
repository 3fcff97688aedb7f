"""A batched z-buffer triangle rasterizer in pure PyTorch (no GL library), and `render`.

    from mesh.cameras import PerspectiveCamera, look_at
    R, t = look_at((0, 1, 4), (0, 1, 0))
    out = render(vertices, faces, PerspectiveCamera(focal=300, R=R, t=t), 128, 64, colors=...)
    out.rgb (B,3,H,W) in [0,1], out.mask (B,1,H,W), out.depth (B,1,H,W) (+inf where empty)

How it works (all batched; Python loops only over a handful of face-size classes)

1. Vertices are projected to pixels (u right, v down). A cheap pass over every face of every
   image drops, conservatively, the faces that are back-facing (optional), cross the near
   plane, leave the guard band or cover no pixel centre — 70-90% of a body's faces at person
   crop size. The rest are snapped to a fixed-point grid of 1/256 pixel and get three integer
   edge functions (exact in float64, and in float32 when a face is small enough), the box of
   pixel centres they may cover, and a plane for their z-buffer depth.
2. Faces whose box is at most 4 × 4 pixels (nearly all of a body's, at 256 × 128 and below)
   are grouped by box size and each group is tested as one dense (faces, box pixels) tile;
   larger faces expand into their box's pixel centres (`repeat_interleave` over box areas).
   The edge functions keep the centres inside.
3. One `scatter_reduce(amin)` per group over int64 keys (quantised depth << 24 | face id)
   resolves the nearest face per pixel (ties → lower face id, deterministic); one gather then
   computes the perspective-correct barycentrics of the winner only.

Rules
- Pixel centres are at (col + 0.5, row + 0.5); a pixel is covered when its centre is inside.
- Fill rule: top-left, on exact integer edge functions — a centre on an edge shared by two
  triangles belongs to exactly one of them, so meshes have neither cracks nor double cover.
- Winding: a face (i, j, k) is front-facing when it is counter-clockwise seen from the camera
  (SMPL's outward winding). `cull_backfaces=True` (default) drops the others; with False both
  sides are drawn (closed meshes render the same, faster with culling).
- Depth: camera-frame z of the nearest surface (perspective: z-buffer on 1/z, which is affine
  in screen space, so the depth is exact for planes; weak perspective: z itself). Empty pixels
  hold +inf. Faces with a vertex at z <= `znear` (perspective) are dropped, not clipped.
- A weak-perspective camera with a negative scale mirrors the image, and so the winding.
- Temporaries: `render` rasterises at most `max_batch` images at once (stage-1 memory is
  ~36 bytes per face per image), and no step expands more than `max_candidates` pixels.
- Coverage is not differentiable; the interpolated values are (w.r.t. vertex attributes).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch

from .shading import DEFAULT_AMBIENT, DEFAULT_LIGHTS, GREY, lambert, vertex_normals

__all__ = ["Fragments", "RenderOutput", "rasterize", "interpolate", "render", "SUBPIXEL"]

SUBPIXEL = 256            # fixed-point steps per pixel (power of two: snapping is exact)
GUARD_PIXELS = 2 ** 16    # faces reaching beyond ±this many pixels are dropped (exactness bound)
FACE_BITS = 24            # face id bits in a z-buffer key (faces per mesh < 16.7 M)
DEPTH_BITS = 38           # quantised depth bits (38 + 24 < 63)
EMPTY = torch.iinfo(torch.int64).max
MAX_CANDIDATES = 1 << 20  # candidate pixels expanded at once (bounds temporaries to ~100 MB)
TILE = 4                  # faces whose box is at most TILE × TILE pixels go by size class


class Fragments(NamedTuple):
    """The visible surface, one row per covered pixel (sparse; rows in ascending `pix`)."""
    pix: torch.Tensor     # (N,) long, flat index b·H·W + row·W + col
    batch: torch.Tensor   # (N,) long, image index b
    face: torch.Tensor    # (N,) long, face index into `faces`
    bary: torch.Tensor    # (N, 3) perspective-correct barycentrics of the face's 3 vertices
    depth: torch.Tensor   # (N,) camera-frame z
    shape: tuple          # (B, H, W)

    def dense(self, values: torch.Tensor, fill=0.0) -> torch.Tensor:
        """Per-fragment values (N,) or (N, C) → an image (B, C, H, W) filled with `fill`."""
        B, H, W = self.shape
        v = values.reshape(values.shape[0], -1)
        out = v.new_full((B * H * W, v.shape[1]), fill)
        out[self.pix] = v
        return out.view(B, H, W, -1).permute(0, 3, 1, 2)


class RenderOutput(NamedTuple):
    rgb: torch.Tensor     # (B, 3, H, W) in [0, 1]
    mask: torch.Tensor    # (B, 1, H, W) float 1 where covered
    depth: torch.Tensor   # (B, 1, H, W) camera-frame z, +inf where empty


def _face_setup(screen, faces, height, width, perspective, cull_backfaces, znear):
    """Per-face setup of the faces that may cover a pixel centre, as a `_Faces`.

    Stage 1 (screen dtype, every face of every image) drops, conservatively, the faces that
    are back-facing, cover no pixel centre, cross the near plane or leave the guard band —
    on a body at person-crop size that is 70–90% of them. Stage 2 (float64, exact fixed-point
    integers) builds the edge functions and depth planes of the rest. Both work on a
    structure of arrays (one contiguous row per coordinate and corner), which keeps every
    operation a plain contiguous pass.
    """
    B, V, _ = screen.shape
    F = faces.shape[0]
    S = float(SUBPIXEL)
    planes = screen.permute(2, 1, 0).contiguous()                    # (3, V, B): x, y, z planes
    G = screen.new_empty(3, 3, F, B)                      # coordinate, corner, face, image
    for k in range(3):
        idx = faces[:, k].contiguous()
        for c in range(3):
            torch.index_select(planes[c], 0, idx, out=G[c, k])
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = G
    eps = 1.0 / S                                          # snapping moves a vertex < 1/S px
    xlo = torch.minimum(torch.minimum(x0, x1), x2)
    xhi = torch.maximum(torch.maximum(x0, x1), x2)
    ylo = torch.minimum(torch.minimum(y0, y1), y2)
    yhi = torch.maximum(torch.maximum(y0, y1), y2)
    keep = (torch.ceil(xlo - (0.5 + eps)).clamp_(min=0)
            <= torch.floor(xhi - (0.5 - eps)).clamp_(max=width - 1))
    keep &= (torch.ceil(ylo - (0.5 + eps)).clamp_(min=0)
             <= torch.floor(yhi - (0.5 - eps)).clamp_(max=height - 1))
    keep &= (xlo > -GUARD_PIXELS) & (xhi < GUARD_PIXELS)
    keep &= (ylo > -GUARD_PIXELS) & (yhi < GUARD_PIXELS)
    if cull_backfaces:   # front faces have area2 < 0 (counter-clockwise seen from the camera)
        area2 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        keep &= area2 < (xhi - xlo + yhi - ylo) * (4 * eps)   # exact test in stage 2
    if perspective:
        keep &= torch.minimum(torch.minimum(z0, z1), z2) > znear
    kept = keep.view(-1).nonzero().squeeze(1)              # flat over (F, B)
    f = torch.div(kept, B, rounding_mode="floor")
    b = kept - f * B
    T = G.view(9, F * B).index_select(1, kept).double()   # (9, n): x0 x1 x2 y0 y1 y2 z0 z1 z2
    # Stage 2: exact fixed point on the survivors; (3, n) blocks, one row per corner / edge.
    x = torch.round(T[0:3] * S)
    y = torch.round(T[3:6] * S)
    z = T[6:9]
    area2 = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    # Pixel centres X*S + S/2 inside the box: X0 = ceil((min - S/2)/S), X1 = floor((max - S/2)/S)
    X0 = torch.ceil((x.amin(0) - S / 2) / S).clamp_(min=0)
    X1 = torch.floor((x.amax(0) - S / 2) / S).clamp_(max=width - 1)
    Y0 = torch.ceil((y.amin(0) - S / 2) / S).clamp_(min=0)
    Y1 = torch.floor((y.amax(0) - S / 2) / S).clamp_(max=height - 1)
    valid = (area2 < 0) if cull_backfaces else (area2 != 0)
    nx = (X1 - X0 + 1).clamp_(min=0).long() * valid         # invalid faces expand to nothing
    ny = (Y1 - Y0 + 1).clamp_(min=0).long() * valid
    sgn = torch.sign(area2)
    # Edge i is opposite vertex i, from a = vertex i+1 to b = vertex i+2:
    # E(p) = -dy·px + dx·py + (dy·ax - dx·ay); sgn makes E >= 0 inside for either winding.
    # Top-left edges own their boundary points: the others need E >= 1 (E is an integer),
    # which is folded into C as a bias of -1.
    ax, ay = x.roll(-1, 0), y.roll(-1, 0)
    dx, dy = (x.roll(-2, 0) - ax) * sgn, (y.roll(-2, 0) - ay) * sgn
    top_left = (dy < 0) | ((dy == 0) & (dx > 0))
    A, Bc = -dy, dx
    C = dy * ax - dx * ay - (~top_left).double()
    cx = X0 * S + S / 2                                               # bbox-origin pixel centre
    cy = Y0 * S + S / 2
    E00 = A * cx + Bc * cy + C
    edges = torch.cat([E00, A * S, Bc * S])                # (9, n): E00, per column, per row
    # Largest |term| or partial sum met while evaluating E over the box: below 2**24 the
    # integers are exact in float32 too, and the scan may run in float32.
    span = (E00.abs() + A.abs() * (S * (nx - 1).clamp(min=0))
            + Bc.abs() * (S * (ny - 1).clamp(min=0))).amax(0)
    # Depth plane d(p) = Σ d_i E_i(p) / Σ E_i, with d = -1/z (perspective) or z (weak);
    # stored at the bbox origin with per-column and per-row steps.
    d = -1.0 / z if perspective else z                                # (3, n)
    area = area2.abs().clamp_(min=1.0)
    ddx = (d * A).sum(0) / area
    ddy = (d * Bc).sum(0) / area
    d00 = d[0] + ddx * (cx - x[0]) + ddy * (cy - y[0])
    depth = torch.stack([d00, ddx * S, ddy * S])                      # (3, n)
    base = b * (height * width) + Y0.long() * width + X0.long()       # flat index of bbox origin
    return _Faces(edges, depth, d, nx, ny, f, base, span)


class _Faces(NamedTuple):
    edges: torch.Tensor   # (9, n) float64: E at the bbox origin (3), per column (3), per row (3)
    depth: torch.Tensor   # (3, n) float64: d at the bbox origin, per column, per row
    dverts: torch.Tensor  # (3, n) d of the three vertices
    nx: torch.Tensor      # (n,) long bbox columns (0: covers nothing)
    ny: torch.Tensor      # (n,) long bbox rows
    fid: torch.Tensor     # (n,) long face index in the mesh
    base: torch.Tensor    # (n,) long flat pixel index of the bbox origin
    span: torch.Tensor    # (n,) float64 bound on |E| terms over the box


def rasterize(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int, *,
              perspective: bool = True, cull_backfaces: bool = True, znear: float = 1e-4,
              max_candidates: int = MAX_CANDIDATES) -> Fragments:
    """Visible face and perspective-correct barycentrics per covered pixel.

    screen: (B, V, 3) pixel u, pixel v, camera-frame z (what a camera's `project` returns).
    faces: (F, 3) long, shared by the batch. `perspective` selects the 1/z depth buffer and
    perspective-correct barycentrics (True) or affine ones (weak perspective).
    max_candidates bounds the pixel candidates expanded at once (memory).
    """
    if faces.shape[0] >= 2 ** FACE_BITS:
        raise ValueError(f"rasterize supports fewer than {2 ** FACE_BITS} faces per mesh")
    B = screen.shape[0]
    device = screen.device
    faces = faces.to(device=device, dtype=torch.long)
    fc = _face_setup(screen, faces, height, width, perspective, cull_backfaces, znear)
    zbuf = torch.full((B * height * width,), EMPTY, dtype=torch.long, device=device)
    if fc.fid.numel():
        dmin, dmax = float(fc.dverts.min()), float(fc.dverts.max())
        qscale = float(2 ** DEPTH_BITS - 2) / max(dmax - dmin, 1e-30)
        depth = fc.depth * qscale
        depth[0] -= dmin * qscale
        # Faces whose box is at most TILE × TILE pixels go by size class, a dense tile per
        # class (no per-pixel gathers); larger ones by the general expansion.
        small = (fc.nx <= TILE) & (fc.ny <= TILE)
        cls = torch.where(small, (fc.ny - 1) * TILE + (fc.nx - 1), TILE * TILE)
        cls = torch.where(fc.nx * fc.ny == 0, TILE * TILE + 1, cls)   # covers nothing: skip
        counts = torch.bincount(cls, minlength=TILE * TILE + 2).tolist()
        order = torch.argsort(cls)
        edges, depth = fc.edges.index_select(1, order), depth.index_select(1, order)
        fid, base = fc.fid.index_select(0, order), fc.base.index_select(0, order)
        span, nx = fc.span.index_select(0, order), fc.nx.index_select(0, order)
        start = 0
        for c, m in enumerate(counts[:TILE * TILE]):
            if m:
                s = slice(start, start + m)
                _scan_tile(zbuf, edges[:, s], depth[:, s], fid[s], base[s], c % TILE + 1,
                           c // TILE + 1, width, float(span[s].max()) < 2.0 ** 24, max_candidates)
            start += m
        m = counts[TILE * TILE]
        if m:
            s = slice(start, start + m)
            ny = fc.ny.index_select(0, order)
            _scan_general(zbuf, edges[:, s], depth[:, s], fid[s], base[s], nx[s], ny[s],
                          span[s], width, max_candidates)
    pix = (zbuf != EMPTY).nonzero().squeeze(1)
    return _resolve(zbuf, pix, screen, faces, height, width, perspective)


def _scan_tile(zbuf, edges, depth, fid, base, tw, th, width, exact32, max_candidates):
    """z-buffer faces whose pixel-centre box is exactly tw × th, as an (m, th·tw) tile."""
    dtype = torch.float32 if exact32 else torch.float64
    m = fid.numel()
    step = max(1, max_candidates // (tw * th))
    if m > step:                                            # keep temporaries bounded
        for s in range(0, m, step):
            sl = slice(s, s + step)
            _scan_tile(zbuf, edges[:, sl], depth[:, sl], fid[sl], base[sl], tw, th, width,
                       exact32, max_candidates)
        return
    edges, depth = edges.to(dtype), depth.to(dtype)
    if tw * th == 1:
        inside = (edges[0:3] >= 0).all(0)
        q = depth[0]
        pix = base
    else:
        row, col = torch.meshgrid(torch.arange(th, device=base.device),
                                  torch.arange(tw, device=base.device), indexing="ij")
        row, col = row.reshape(-1), col.reshape(-1)
        colf, rowf = col.to(dtype), row.to(dtype)
        e = edges[0:3, :, None] + edges[3:6, :, None] * colf + edges[6:9, :, None] * rowf
        inside = (e >= 0).all(0)                                     # (m, T)
        q = depth[0, :, None] + depth[1, :, None] * colf + depth[2, :, None] * rowf
        pix = base[:, None] + (row * width + col)
    fid = fid.view(-1, *([1] * (q.dim() - 1)))
    key = (q.long().clamp_(0, 2 ** DEPTH_BITS - 1) << FACE_BITS) | fid
    key.masked_fill_(~inside, EMPTY)
    zbuf.scatter_reduce_(0, pix.reshape(-1), key.reshape(-1), reduce="amin")


def _scan_general(zbuf, edges, depth, fid, base, nx, ny, span, width, max_candidates):
    """z-buffer faces of any size: expand each to the pixel centres of its box."""
    count = nx * ny
    ends = torch.cumsum(count, 0)
    total, n = int(ends[-1]), count.numel()
    bounds = [0, n]
    if total > max_candidates:           # chunks of whole faces, ~max_candidates pixels each
        marks = torch.arange(max_candidates, total, max_candidates, device=count.device)
        cuts = torch.searchsorted(ends, marks, right=True).tolist()
        bounds = [0] + sorted({c for c in cuts if 0 < c < n}) + [n]
    edges_rows, depth_rows = edges.T.contiguous(), depth.T.contiguous()   # (n, 9), (n, 3)
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e == s:
            continue
        dtype = torch.float32 if float(span[s:e].max()) < 2.0 ** 24 else torch.float64
        cnt = count[s:e]
        face = torch.repeat_interleave(cnt)                          # (c,) face per candidate
        start = torch.cumsum(cnt, 0) - cnt
        lin = torch.arange(face.numel(), device=face.device) - start.index_select(0, face)
        w = nx[s:e].index_select(0, face)
        row = torch.div(lin, w, rounding_mode="floor")
        col = lin - row * w
        coef = edges_rows[s:e].to(dtype).index_select(0, face)       # (c, 9)
        rowf, colf = row.to(dtype).unsqueeze(1), col.to(dtype).unsqueeze(1)
        ev = torch.addcmul(torch.addcmul(coef[:, 0:3], coef[:, 3:6], colf), coef[:, 6:9], rowf)
        inside = (ev >= 0).all(dim=1)
        dp = depth_rows[s:e].to(dtype).index_select(0, face)
        q = torch.addcmul(torch.addcmul(dp[:, 0:1], dp[:, 1:2], colf), dp[:, 2:3], rowf)
        key = (q.squeeze(1).long().clamp_(0, 2 ** DEPTH_BITS - 1) << FACE_BITS) \
            | fid[s:e].index_select(0, face)
        key.masked_fill_(~inside, EMPTY)
        pix = base[s:e].index_select(0, face) + row * width + col
        zbuf.scatter_reduce_(0, pix, key, reduce="amin")


def _resolve(zbuf, pix, screen, faces, height, width, perspective):
    """Barycentrics and depth of the winning face at each covered pixel."""
    B = screen.shape[0]
    HW = height * width
    face = zbuf[pix] & ((1 << FACE_BITS) - 1)
    b = torch.div(pix, HW, rounding_mode="floor")
    rem = pix - b * HW
    row = torch.div(rem, width, rounding_mode="floor")
    px = (rem - row * width).to(screen.dtype) + 0.5
    py = row.to(screen.dtype) + 0.5
    V = screen.shape[1]
    vid = (faces.index_select(0, face) + (b * V).unsqueeze(1)).view(-1)
    tri = screen.reshape(B * V, 3).index_select(0, vid).view(-1, 3, 3)  # (N, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    ax, ay = x.roll(-1, 1), y.roll(-1, 1)                            # edge i: vertex i+1 → i+2
    dx, dy = x.roll(-2, 1) - ax, y.roll(-2, 1) - ay
    e = dx * (py.unsqueeze(1) - ay) - dy * (px.unsqueeze(1) - ax)    # (N, 3), ∝ barycentrics
    w = e / e.sum(1, keepdim=True)
    w = w.clamp_(0.0, 1.0)
    if perspective:
        w = w / z
        inv = w.sum(1, keepdim=True)
        bary = w / inv
        depth = 1.0 / inv.squeeze(1)
    else:
        bary = w / w.sum(1, keepdim=True)
        depth = (bary * z).sum(1)
    return Fragments(pix, b, face, bary, depth, (B, height, width))


def interpolate(fragments: Fragments, faces: torch.Tensor,
                attributes: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes (B, V, C) or (V, C) → per-fragment values (N, C)."""
    vi = faces.to(attributes.device).index_select(0, fragments.face)  # (N, 3)
    C = attributes.shape[-1]
    if attributes.dim() == 3:
        V = attributes.shape[1]
        vi = vi + (fragments.batch * V).unsqueeze(1)
    vals = attributes.reshape(-1, C).index_select(0, vi.view(-1)).view(-1, 3, C)
    bary = fragments.bary.to(vals.dtype)
    return (vals[:, 0] * bary[:, 0:1] + vals[:, 1] * bary[:, 1:2]
            + vals[:, 2] * bary[:, 2:3])


def _background(background, B, H, W, like):
    bg = torch.as_tensor(0.0 if background is None else background, dtype=like.dtype,
                         device=like.device)
    if bg.dim() <= 1:                       # a number or an RGB colour
        return bg.reshape(1, -1, 1, 1).expand(B, 3, H, W)
    if bg.dim() == 2:                       # (B, 3) colours
        return bg.reshape(B, 3, 1, 1).expand(B, 3, H, W)
    return bg.expand(B, 3, H, W)            # (3, H, W) or (B, 3, H, W) images


def render(vertices: torch.Tensor, faces: torch.Tensor, camera, height: int, width: int,
           colors: Optional[torch.Tensor] = None, *, mode: str = "rgb", background=None,
           ambient=DEFAULT_AMBIENT, lights: Sequence = DEFAULT_LIGHTS, grey: float = GREY,
           cull_backfaces: bool = True, max_batch: int = 64) -> RenderOutput:
    """Render a batch of meshes sharing `faces` with Gouraud-interpolated Lambert shading.

    vertices: (B, V, 3) world (or, with an identity camera pose, camera-frame) coordinates.
    faces: (F, 3) long, counter-clockwise seen from outside.
    camera: a `PerspectiveCamera` or `WeakPerspectiveCamera` (batched parameters or shared).
    colors: (B, V, 3) or (V, 3) in [0, 1]; ignored in mode "grey" (surface colour `grey`).
    mode: "rgb" (lit vertex colours) or "grey" (GCL's structure image: a uniformly grey,
    Lambert-shaded body). Lighting: `mesh.shading.lambert` (lights in the camera frame).
    background: a number, an RGB colour (3,) or (B, 3), or an image (3, H, W) / (B, 3, H, W);
    default black.
    max_batch: images rasterised per pass (bounds memory for large batches).
    Returns RenderOutput(rgb (B,3,H,W), mask (B,1,H,W), depth (B,1,H,W), +inf where empty).
    """
    if mode not in ("rgb", "grey"):
        raise ValueError(f"render mode must be 'rgb' or 'grey', not {mode!r}")
    B = vertices.shape[0]
    if B > max_batch:
        parts = [render(vertices[s:s + max_batch], faces, _slice_camera(camera, s, max_batch, B),
                        height, width, _slice(colors, s, max_batch, B), mode=mode,
                        background=_slice(background, s, max_batch, B),
                        ambient=_slice(ambient, s, max_batch, B),
                        lights=[(_slice(d, s, max_batch, B), _slice(i, s, max_batch, B))
                                for d, i in lights],
                        grey=grey, cull_backfaces=cull_backfaces, max_batch=max_batch)
                 for s in range(0, B, max_batch)]
        return RenderOutput(*(torch.cat(t) for t in zip(*parts)))
    faces = faces.to(device=vertices.device, dtype=torch.long)
    cam_pts = camera.to_camera(vertices)
    screen = camera.project_camera(cam_pts, height, width)
    frags = rasterize(screen, faces, height, width, perspective=camera.perspective,
                      cull_backfaces=cull_backfaces)
    normals = vertex_normals(cam_pts, faces)
    if mode == "grey":
        colors = vertices.new_full((1, 1, 3), grey).expand(B, vertices.shape[1], 3)
    elif colors is None:
        raise ValueError("render mode 'rgb' needs per-vertex colors (B, V, 3) or (V, 3)")
    lit = lambert(normals, colors.to(vertices.dtype), ambient, lights)
    values = interpolate(frags, faces, lit)
    HW = height * width
    bg = _background(background, B, height, width, vertices)
    rgb = bg.permute(0, 2, 3, 1).reshape(B * HW, 3).clone()
    rgb[frags.pix] = values
    rgb = rgb.view(B, height, width, 3).permute(0, 3, 1, 2)
    mask = vertices.new_zeros(B * HW)
    mask[frags.pix] = 1.0
    depth = vertices.new_full((B * HW,), float("inf"))
    depth[frags.pix] = frags.depth.to(vertices.dtype)
    return RenderOutput(rgb.contiguous(), mask.view(B, 1, height, width),
                        depth.view(B, 1, height, width))


def _slice(x, s, n, B):
    """Rows s:s+n of a per-image parameter (first dimension B); shared ones pass through."""
    if torch.is_tensor(x) and x.dim() > 0 and x.shape[0] == B:
        return x[s:s + n]
    return x


def _slice_camera(camera, s, n, B):
    fields = {k: _slice(v, s, n, B) if torch.is_tensor(v) else v
              for k, v in vars(camera).items()}
    return type(camera)(**fields)
