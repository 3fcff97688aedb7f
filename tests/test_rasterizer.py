"""The rasterizer and cameras against geometry: coverage, fill rule, depth, silhouettes, shading."""
import math

import pytest
import torch

from mesh.cameras import (Y_UP_TO_CAMERA, PerspectiveCamera, WeakPerspectiveCamera, look_at,
                          ndc_to_pixel, pixel_to_ndc, weak_perspective_to_translation)
from mesh.rasterizer import rasterize, render
from mesh.shading import DEFAULT_LIGHTS, vertex_normals

EPS32 = torch.finfo(torch.float32).eps


def centres(height, width):
    """Pixel centres (H, W) as x = col + 0.5, y = row + 0.5 in float64."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                          torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    return x, y


def coverage(screen, faces, height, width, **kw):
    """Mask (B, H, W) of the covered pixels."""
    frags = rasterize(screen, faces, height, width, **kw)
    mask = torch.zeros(screen.shape[0] * height * width, dtype=torch.bool)
    mask[frags.pix] = True
    return mask.view(-1, height, width)


def per_face_counts(screen, faces, height, width):
    """How many faces cover each pixel (rasterising the faces one at a time)."""
    total = torch.zeros(height, width, dtype=torch.long)
    for f in range(faces.shape[0]):
        total += coverage(screen, faces[f:f + 1], height, width, cull_backfaces=False)[0].long()
    return total


def uv_sphere(radius, segments=96, rings=64):
    lat = torch.linspace(-math.pi / 2, math.pi / 2, rings + 1, dtype=torch.float64)[1:-1]
    lon = torch.linspace(0, 2 * math.pi, segments + 1, dtype=torch.float64)[:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    ring = torch.stack([torch.cos(la) * torch.cos(lo), torch.sin(la),
                        -torch.cos(la) * torch.sin(lo)], -1).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0, -1.0, 0]], dtype=torch.float64), ring,
                       torch.tensor([[0, 1.0, 0]], dtype=torch.float64)]) * radius
    idx = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    top, faces = 1 + (rings - 1) * segments, []
    for s in range(segments):
        faces += [(0, idx(0, s + 1), idx(0, s)), (top, idx(rings - 2, s), idx(rings - 2, s + 1))]
        faces += [f for r in range(rings - 2) for f in (
            (idx(r, s), idx(r, s + 1), idx(r + 1, s + 1)),
            (idx(r, s), idx(r + 1, s + 1), idx(r + 1, s)))]
    return verts.float(), torch.tensor(faces)


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("winding", [(0, 1, 2), (0, 2, 1)])
def test_triangle_covers_exactly_the_pixel_centres_inside(winding):
    H, W = 20, 24
    pts = torch.tensor([[1.3, 2.1], [21.7, 6.2], [6.1, 18.9]], dtype=torch.float64)
    screen = torch.cat([pts, torch.ones(3, 1, dtype=torch.float64)], 1)[None].float()
    # the vertices as the float32 screen holds them: the float64 edge functions below are then
    # exact (differences of 24-bit values, products of < 53 bits), like the rasterizer's
    pts = screen[0, :, :2].double()
    faces = torch.tensor([winding])
    x, y = centres(H, W)
    inside = torch.ones(H, W, dtype=torch.bool)
    area = ((pts[1, 0] - pts[0, 0]) * (pts[2, 1] - pts[0, 1])
            - (pts[1, 1] - pts[0, 1]) * (pts[2, 0] - pts[0, 0]))
    for i in range(3):
        a, b = pts[i], pts[(i + 1) % 3]
        e = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
        inside &= e * area.sign() > 0
    got = coverage(screen, faces, H, W, cull_backfaces=False)[0]
    assert inside.sum() > 50
    assert torch.equal(got, inside)


def test_backface_culling_keeps_counter_clockwise_faces():
    # Counter-clockwise as seen by the viewer: on screen (y down) (0,0) → (0,10) → (10,0).
    screen = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 10.0, 1.0], [10.0, 0.0, 1.0]]])
    front, back = torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]])
    assert coverage(screen, front, 12, 12)[0].sum() > 0
    assert coverage(screen, back, 12, 12)[0].sum() == 0
    assert torch.equal(coverage(screen, back, 12, 12, cull_backfaces=False),
                       coverage(screen, front, 12, 12))


def test_square_of_two_triangles_covers_its_area_exactly_once():
    # Corners on pixel borders, the shared diagonal through pixel centres: the hard case.
    H, W = 16, 16
    screen = torch.tensor([[[2.0, 3.0, 1.0], [12.0, 3.0, 1.0], [12.0, 13.0, 1.0],
                            [2.0, 13.0, 1.0]]])
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])
    counts = per_face_counts(screen, faces, H, W)
    assert counts.max() == 1
    assert counts.sum() == 10 * 10
    assert counts[3:13, 2:12].eq(1).all()
    assert coverage(screen, faces, H, W)[0].sum() == 100


def test_mesh_has_no_cracks_and_no_double_cover():
    # A 6 × 5 grid of jittered vertices, several on pixel centres and edges through centres.
    H, W = 24, 28
    gen = torch.Generator().manual_seed(0)
    gx, gy = torch.meshgrid(torch.linspace(2, 26, 7), torch.linspace(2, 22, 6), indexing="xy")
    jitter = (torch.rand(6, 7, 2, generator=gen) - 0.5) * 2.0
    jitter[[0, -1]] = 0
    jitter[:, [0, -1]] = 0
    pts = torch.stack([gx, gy], -1) + jitter
    pts[2, 3] = torch.tensor([12.5, 10.5])                    # a vertex on a pixel centre
    pts[3, 3] = torch.tensor([12.5, 14.5])                    # a vertical edge through centres
    screen = torch.cat([pts.reshape(-1, 2), torch.ones(42, 1)], 1)[None]
    faces = []
    for r in range(5):
        for c in range(6):
            i = r * 7 + c
            faces += [(i, i + 7, i + 8), (i, i + 8, i + 1)] if (r + c) % 2 else \
                     [(i, i + 7, i + 1), (i + 1, i + 7, i + 8)]
    counts = per_face_counts(screen, torch.tensor(faces), H, W)
    assert counts.max() == 1
    assert counts[2:22, 2:26].eq(1).all()                     # the outer border is at 2 .. 26
    assert counts.sum() == 20 * 24


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_triangle_wins_whatever_the_draw_order(order):
    cam = PerspectiveCamera(focal=20.0)
    near = [[-1.0, -1.0, 3.0], [1.0, -1.0, 3.0], [0.0, 1.0, 3.0]]
    far = [[-3.0, -2.0, 5.0], [3.0, -2.0, 5.0], [0.0, 3.0, 5.0]]
    verts = torch.tensor([near + far])
    tris = [[0, 1, 2], [3, 4, 5]]
    faces = torch.tensor([tris[i] for i in order])
    frags = rasterize(cam.project(verts, 16, 16), faces, 16, 16, cull_backfaces=False)
    centre = frags.pix == 8 * 16 + 8
    assert faces[frags.face[centre]].tolist() == [[0, 1, 2]]
    # float32: depth = 1 / Σ (w_i / z) with w = e / Σ e, about eight roundings: <= 8 eps32 relative
    assert torch.allclose(frags.depth[centre], torch.tensor([3.0]), rtol=8 * EPS32, atol=0)
    near_pix = faces[frags.face].tolist()
    shown = torch.tensor([tri == [0, 1, 2] for tri in near_pix])
    assert shown.any() and (~shown).any()                        # both visible somewhere
    assert torch.allclose(frags.depth[shown], torch.tensor(3.0), rtol=8 * EPS32, atol=0)
    assert torch.allclose(frags.depth[~shown], torch.tensor(5.0), rtol=8 * EPS32, atol=0)


def test_depth_equals_the_plane_z_under_perspective():
    H = W = 32
    cam = PerspectiveCamera(focal=30.0)
    # the plane z = 2.5 + 0.5·x, seen at an angle
    verts = torch.tensor([[[-1.0, -1.0, 2.0], [1.0, -1.0, 3.0], [1.0, 1.0, 3.0], [-1.0, 1.0, 2.0]]])
    out = render(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), cam, H, W, colors=torch.ones(4, 3),
                 cull_backfaces=False)
    x, _ = centres(H, W)
    ray_x = (x - W / 2) / 30.0                                   # x/z along each pixel's ray
    z = 2.5 / (1.0 - 0.5 * ray_x)
    m = out.mask[0, 0] > 0
    assert m.sum() > 300
    # float32 edge functions: products of pixel offsets up to the triangles' extent (~30 px), which
    # err by a few eps32 relative to the doubled area they are divided by (ratio <~ 2 here)
    assert torch.allclose(out.depth[0, 0][m].double(), z[m], rtol=16 * EPS32, atol=0)
    assert torch.isinf(out.depth[0, 0][~m]).all()


# --------------------------------------------------------------------------- cameras


def test_sphere_silhouette_matches_the_analytic_projection():
    H = W = 96
    r, d, f = 0.5, 3.0, 100.0
    verts, faces = uv_sphere(r)
    verts = verts + torch.tensor([0.0, 0.0, d])                  # camera frame, in front
    out = render(verts[None], faces, PerspectiveCamera(focal=f), H, W, mode="grey")
    radius = f * r / math.sqrt(d * d - r * r)                    # tangent cone half-angle asin(r/d)
    area = out.mask.sum().item()
    assert abs(area - math.pi * radius ** 2) / (math.pi * radius ** 2) < 0.01
    x, y = centres(H, W)
    m = out.mask[0, 0].double()
    assert abs((x * m).sum() / m.sum() - W / 2) < 0.05
    assert abs((y * m).sum() / m.sum() - H / 2) < 0.05
    near = out.depth[0, 0, H // 2, W // 2].item()                 # the nearest point: z = d - r
    assert abs(near - (d - r)) < 1e-3


def test_perspective_point_lands_where_the_pinhole_formula_says():
    R, t = look_at((1.0, 1.5, 4.0), (0.0, 0.8, 0.0))
    cam = PerspectiveCamera(focal=(120.0, 110.0), principal=(40.0, 70.0), R=R, t=t)
    p = torch.tensor([[[0.2, 1.1, -0.3]]])
    pc = p[0, 0] @ R.T + t
    uv = cam.project(p, 140, 80)[0, 0]
    # float32, two different kernels for R p + t (3-term sums, <= 2 eps32 · |pc| each); the pinhole
    # scales that by f / z · (1 + |x| / z), and u, v (< 140 px) round to a few eps32 · 140
    d_pc = 4 * EPS32 * pc.abs().max()
    tol = (120 / pc[2] * (1 + pc[:2].abs().max() / pc[2]) * d_pc + 4 * EPS32 * 140).item()
    assert torch.allclose(uv, torch.stack([120 * pc[0] / pc[2] + 40, 110 * pc[1] / pc[2] + 70,
                                           pc[2]]), rtol=0, atol=tol)
    # a small square around the point, facing the camera, is drawn centred on (u, v)
    ex, ey = R[0] * 0.05, R[1] * 0.05
    quad = torch.stack([p[0, 0] - ex - ey, p[0, 0] + ex - ey, p[0, 0] + ex + ey,
                        p[0, 0] - ex + ey])[None]
    out = render(quad, torch.tensor([[0, 2, 1], [0, 3, 2]]), cam, 140, 80, colors=torch.ones(4, 3))
    x, y = centres(140, 80)
    m = out.mask[0, 0].double()
    assert m.sum() > 4
    assert abs((x * m).sum() / m.sum() - uv[0]) < 0.6 and abs((y * m).sum() / m.sum() - uv[1]) < 0.6


def test_look_at_stands_a_y_up_body_upright():
    R, t = look_at((0.0, 0.0, 5.0), (0.0, 0.0, 0.0))
    # axis-aligned: the normalisations and cross products are exact
    assert torch.equal(R, Y_UP_TO_CAMERA) and torch.equal(t, torch.tensor([0.0, 0.0, 5.0]))
    cam = PerspectiveCamera(focal=100.0, R=R, t=t)
    uv = cam.project(torch.tensor([[[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]), 128, 64)
    head, feet, side = uv[0]
    assert head[1] < feet[1]                                     # up in the world is up on screen
    assert side[0] > 32                                          # +x is to the right
    # the body's front (+z) faces this camera: a +z-facing CCW face is front-facing
    quad = torch.tensor([[[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert render(quad, faces, cam, 128, 64, colors=torch.ones(4, 3)).mask.sum() > 0


def test_weak_perspective_follows_spin_formula_and_the_crop_mapping():
    H, W = 128, 64
    cam = torch.tensor([[0.9, 0.1, -0.2], [1.2, -0.3, 0.05]])
    pts = torch.randn(2, 5, 3)
    got = WeakPerspectiveCamera(cam).project(pts, H, W)
    ndc = cam[:, None, :1] * (pts[..., :2] + cam[:, None, 1:])
    # the formula's own float32 ops in the same order: exact
    assert torch.equal(got[..., 2], pts[..., 2])
    half = max(H, W) / 2
    assert torch.equal(got[..., 0], W / 2 + ndc[..., 0] * half)
    assert torch.equal(got[..., 1], H / 2 + ndc[..., 1] * half)   # y grows downward
    corners = ndc_to_pixel(torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.0]]), H, W)
    # NDC [-1, 1]² is the 128 × 128 square centred on the crop: the crop shows x_ndc in ±0.5
    # (binary fractions times 64 plus 32: exact both ways)
    assert torch.equal(corners, torch.tensor([[-32.0, 0.0], [96.0, 128.0], [0.0, 64.0]]))
    assert torch.equal(pixel_to_ndc(corners, H, W), torch.tensor([[-1.0, -1.0], [1.0, 1.0],
                                                                 [-0.5, 0.0]]))
    # SPIN's perspective equivalent agrees exactly on the z = 0 plane
    flat = pts.clone()
    flat[..., 2] = 0
    trans = weak_perspective_to_translation(cam, focal=500.0, size=max(H, W))
    persp = PerspectiveCamera(focal=500.0, t=trans).project(flat, H, W)
    weak = WeakPerspectiveCamera(cam).project(flat, H, W)[..., :2]
    # float32: s·(x + t)·half against f·(x + t) / (2f / (size·s)): a handful of roundings each,
    # relative to the pixel coordinates
    assert torch.allclose(persp[..., :2], weak, rtol=0, atol=8 * EPS32 * weak.abs().max().item())


def test_weak_perspective_renders_a_y_up_body_upright_with_the_half_turn():
    quad = torch.tensor([[[-0.3, 0.0, 0.0], [0.3, 0.0, 0.0], [0.3, 0.9, 0.0], [-0.3, 0.9, 0.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cam = WeakPerspectiveCamera(torch.tensor([1.0, 0.0, 0.0]), R=Y_UP_TO_CAMERA)
    out = render(quad, faces, cam, 64, 32, colors=torch.ones(4, 3))
    rows = out.mask[0, 0].sum(1).nonzero().squeeze(1)
    assert rows.min() >= 2 and rows.max() <= 32                  # y up → upper half of the crop
    # barycentric means of z = 0 exactly
    assert (out.depth[0, 0][out.mask[0, 0] > 0] == 0).all()


# --------------------------------------------------------------------------- shading


def test_lambert_of_a_tilted_plane_is_the_cosine():
    H = W = 24
    quad = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])                  # facing -z: toward the camera
    values = []
    for angle in (0.0, 30.0, 60.0):
        a = math.radians(angle)
        rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0],
                            [-math.sin(a), 0, math.cos(a)]])
        verts = (quad @ rot.T + torch.tensor([0.0, 0.0, 4.0]))[None]
        out = render(verts, faces, PerspectiveCamera(focal=40.0), H, W, colors=torch.ones(4, 3),
                     ambient=0.0, lights=[((0.0, 0.0, -1.0), 1.0)])
        values.append(out.rgb[0, :, H // 2, W // 2])
    # float32: the rotated corners (|v| <= 4) carry a few eps32, the normals' directions from
    # their 2 m edges a few more, and cos(angle) moves by at most that angle error
    for angle, v in zip((0.0, 30.0, 60.0), values):
        assert torch.allclose(v, torch.full((3,), math.cos(math.radians(angle))), rtol=0, atol=16 * EPS32)


def test_vertex_normals_are_area_weighted():
    # vertex 0 is shared by a big face in z = 0 and a small one in x = 0
    verts = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 0.5], [0, 0.5, 0]]])
    faces = torch.tensor([[0, 1, 2], [0, 4, 3]])
    n = vertex_normals(verts, faces)[0, 0]
    expected = torch.nn.functional.normalize(torch.tensor([0.125, 0.0, 2.0]), dim=0)
    # the cross products and sums of these binary fractions are exact; only normalising rounds
    assert torch.allclose(n, expected, rtol=0, atol=4 * EPS32)


def test_colour_at_a_vertex_is_the_vertex_colour_and_perspective_correct():
    H = W = 32
    cam = PerspectiveCamera(focal=32.0)
    # a tilted fan around vertex 0, which projects exactly onto the centre of pixel (10, 10):
    # the fill rule gives that centre to exactly one face of the fan, with weight 1 on vertex 0
    z0 = 2.0
    p0 = [(10.5 - 16) / 32 * z0, (10.5 - 16) / 32 * z0, z0]
    ring = [[p0[0] + dx, p0[1] + dy, z0 + 0.3 * dx - 0.2 * dy]
            for dx, dy in ((-0.3, -0.3), (0.3, -0.3), (0.3, 0.3), (-0.3, 0.3))]
    fan = torch.tensor([[p0] + ring])
    fan_colors = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    fan_faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    kw = dict(ambient=1.0, lights=[], cull_backfaces=False)
    out = render(fan, fan_faces, cam, H, W, colors=fan_colors, **kw)
    assert out.mask[0, 0, 10, 10] == 1
    # the centre is the projected vertex exactly (binary fractions), so both edge functions
    # through it are exactly 0 and the weights exactly (1, 0, 0)
    assert torch.equal(out.rgb[0, :, 10, 10], fan_colors[0])
    verts = torch.tensor([[p0, [0.6, -0.4, 4.0], [0.2, 0.9, 3.0]]])
    colors = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3], [0.2, 0.3, 0.7]])
    faces = torch.tensor([[0, 1, 2]])
    # the 3D centroid of a tilted triangle, moved onto a pixel centre, gets the mean colour;
    # screen-space (affine) interpolation would be off by several percent here
    centroid = verts[0].mean(0)
    u, v = cam.project(centroid[None, None], H, W)[0, 0, :2]
    shift = torch.tensor([(math.floor(u) + 0.5 - u) * centroid[2] / 32,
                          (math.floor(v) + 0.5 - v) * centroid[2] / 32, 0.0])
    out = render(verts + shift, faces, cam, H, W, colors=colors, **kw)
    px = out.rgb[0, :, int(math.floor(v)), int(math.floor(u))]
    # float32: perspective-correct weights, a few eps32 relative each, on colours <= 0.9; the
    # centroid lands on the centre to ~1e-6 px, where the colours change by ~0.1 per px
    assert torch.allclose(px, colors.mean(0), rtol=0, atol=16 * EPS32)
    screen = cam.project(verts + shift, H, W)[0, :, :2]
    affine = torch.linalg.solve(torch.cat([screen.T, torch.ones(1, 3)]),
                                torch.tensor([math.floor(u) + 0.5, math.floor(v) + 0.5, 1.0]))
    assert (affine @ colors - colors.mean(0)).abs().max() > 0.02


# --------------------------------------------------------------------------- batching, modes


def test_batch_rendering_equals_one_by_one_and_chunking_is_invisible():
    verts, faces = uv_sphere(0.6, segments=24, rings=16)
    gen = torch.Generator().manual_seed(1)
    B = 4
    batch = verts[None] * (1 + 0.3 * torch.rand(B, 1, 3, generator=gen)) + torch.tensor([0, 0, 3.0])
    colors = torch.rand(B, verts.shape[0], 3, generator=gen)
    cam = PerspectiveCamera(focal=torch.tensor([60.0, 70.0, 80.0, 90.0]))
    whole = render(batch, faces, cam, 48, 40, colors=colors)
    # Projection, rasterisation and interpolation are elementwise: coverage and depth are
    # bit-identical whatever the batch. The Lambert term n·l is a batched matmul, though, whose
    # kernel (and summation order) may change with the batch: 3-term dot products of unit vectors
    # (<= 2 eps32 each way) times the lights' total intensity, on colours <= 1.
    rgb_tol = 4 * EPS32 * sum(i for _, i in DEFAULT_LIGHTS)
    for i in range(B):
        one = render(batch[i:i + 1], faces, PerspectiveCamera(focal=cam.focal[i:i + 1]), 48, 40,
                     colors=colors[i:i + 1])
        assert torch.allclose(whole.rgb[i:i + 1], one.rgb, rtol=0, atol=rgb_tol)
        assert torch.equal(whole.mask[i:i + 1], one.mask) and torch.equal(whole.depth[i:i + 1], one.depth)
    split = render(batch, faces, cam, 48, 40, colors=colors, max_batch=3)
    assert torch.allclose(whole.rgb, split.rgb, rtol=0, atol=rgb_tol)
    assert torch.equal(whole.mask, split.mask) and torch.equal(whole.depth, split.depth)
    screen = cam.project(batch, 48, 40)
    f1 = rasterize(screen, faces, 48, 40)
    f2 = rasterize(screen, faces, 48, 40, max_candidates=50)     # many chunks
    assert torch.equal(f1.pix, f2.pix) and torch.equal(f1.face, f2.face)


def test_size_class_tiles_match_the_general_expansion(monkeypatch):
    import mesh.rasterizer as rast
    verts, faces = uv_sphere(0.6, segments=40, rings=24)
    cam = PerspectiveCamera(focal=torch.tensor([30.0, 90.0]))
    screen = cam.project(verts[None].repeat(2, 1, 1) + torch.tensor([0.1, 0.2, 3.0]), 64, 48)
    tiled = rasterize(screen, faces, 64, 48)
    monkeypatch.setattr(rast, "TILE", 0)                         # every face the general way
    general = rasterize(screen, faces, 64, 48)
    assert torch.equal(tiled.pix, general.pix) and torch.equal(tiled.face, general.face)
    assert torch.equal(tiled.bary, general.bary)


def test_nothing_in_view_gives_empty_images():
    verts, faces = uv_sphere(0.5, segments=12, rings=8)
    behind = (verts + torch.tensor([0.0, 0.0, -3.0]))[None]
    out = render(behind, faces, PerspectiveCamera(focal=40.0), 32, 16,
                 colors=torch.ones_like(verts),
                 background=(0.2, 0.4, 0.6))
    assert out.mask.sum() == 0 and torch.isinf(out.depth).all()
    assert torch.equal(out.rgb[0, :, 5, 5], torch.tensor([0.2, 0.4, 0.6]))  # copied


def test_large_triangles_take_the_exact_float64_path():
    # a triangle spanning 600 px exceeds float32's exact range; coverage stays exact
    H, W = 40, 600
    screen = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 40.0, 1.0], [600.0, 40.0, 1.0],
                            [600.0, 0.0, 1.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    counts = per_face_counts(screen, faces, H, W)
    assert counts.eq(1).all()


def test_grey_mode_background_and_empty_pixels():
    verts, faces = uv_sphere(0.5, segments=16, rings=12)
    verts = (verts + torch.tensor([0, 0, 3.0]))[None].expand(2, -1, -1)
    bg = torch.rand(2, 3, 64, 32)
    out = render(verts, faces, PerspectiveCamera(focal=40.0), 64, 32, mode="grey", background=bg)
    assert out.rgb.shape == (2, 3, 64, 32) and out.mask.shape == out.depth.shape == (2, 1, 64, 32)
    m = out.mask > 0
    assert torch.equal(out.rgb[~m.expand_as(bg)], bg[~m.expand_as(bg)])
    inside = out.rgb.permute(0, 2, 3, 1)[m[:, 0]]
    assert torch.equal(inside[:, 0], inside[:, 1]) and torch.equal(inside[:, 1], inside[:, 2])
    assert torch.isinf(out.depth[~m]).all() and torch.isfinite(out.depth[m]).all()
    assert (out.rgb >= 0).all() and (out.rgb <= 1).all()
    with pytest.raises(ValueError, match="colors"):
        render(verts, faces, PerspectiveCamera(focal=40.0), 64, 32)
