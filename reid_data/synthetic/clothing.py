"""Clothes as per-vertex colours over the body.

Every garment is a region of the body's vertices decided in the **rest pose** (the T-pose:
arms along ±x, y up, the body faces +z, soles at y = -1.17) from the vertices' positions and
their dominant skinning joint. The regions therefore follow the body when it moves, as printed
cloth would. `BodyRegions` computes the per-vertex coordinates once; `paint` paints one
`Appearance` onto them: colours in [0, 1], with a little per-vertex fabric noise so that large
areas are not perfectly flat, and the part each vertex shows (the true garment masks).

Regions, from the skin outward: skin; shoes and socks; the lower garment (trousers, capri or
shorts from the waist down, optionally with a side stripe); the upper garment (from its hem
to the neckline, sleeves short, three-quarter or long; patterns: stripes, a chest logo, two
tones split across the chest, sleeves of another colour, an open jacket over a shirt, a print
on the back); bag straps; hair (a cap over the skull, long hair down the nape and the upper
back) and an optional hat; the accessory boxes in the bag's colour.
"""
from __future__ import annotations

import numpy as np

from .identities import Appearance

SHOULDER_X = 0.16       # where the arm starts (rest pose, |x|)
WRIST_A = 0.525         # arm coordinate (|x| - SHOULDER_X) of the wrist
ARM_JOINTS = (16, 17, 18, 19, 20, 21, 22, 23)
FOOT_JOINTS = (7, 8, 10, 11)


class BodyRegions:
    """Per-vertex quantities of the rest body used to cut garments."""

    def __init__(self, body):
        self.body = body
        v = body.rest[:body.num_body]
        w = body.weights[:body.num_body]
        self.x, self.y, self.z = v[:, 0], v[:, 1], v[:, 2]
        self.part = w.argmax(1)
        self.arm = np.isin(self.part, ARM_JOINTS) | (np.isin(self.part, (13, 14))
                                                    & (np.abs(self.x) > 0.14))
        self.arm_a = np.where(self.arm, np.abs(self.x) - SHOULDER_X, -1.0)
        self.hand = self.arm & (self.arm_a > WRIST_A + 0.01)
        self.head = (self.part == 15) | (self.y > 0.33)
        self.neck = (self.part == 12) & ~self.head
        self.torso = ~self.arm & ~self.head & (self.y > -0.45)
        self.leg = ~self.arm & (self.y <= -0.1)
        self.foot = np.isin(self.part, FOOT_JOINTS)
        # hairline rises from the nape (back) to the forehead (front)
        self.hairline = 0.405 + 0.055 * np.clip(self.z / 0.08, -1.0, 1.0)
        # outer side of each leg (for a side stripe): the leg's own centre is at |x| ~ 0.10
        self.leg_side = np.abs(self.x) - (0.10 + 0.002 * (self.y + 0.7))
        self.num_vertices = body.num_vertices

    def hair_mask(self, a: Appearance) -> np.ndarray:
        if a.hair_style == "bald":
            return np.zeros_like(self.y, dtype=bool)
        cap = self.head & (self.y > self.hairline)
        if a.hair_style == "long":
            back = (self.z < 0.0) & (self.y > 0.17) & (np.abs(self.x) < 0.11) & ~self.arm
            sides = self.head & (np.abs(self.x) > 0.055) & (self.z < 0.05) & (self.y > 0.31)
            cap = cap | back | sides
        return cap

    def hat_mask(self, a: Appearance) -> np.ndarray:
        if not a.hat:
            return np.zeros_like(self.y, dtype=bool)
        brim = 0.455 + 0.02 * np.clip(self.z / 0.08, -1.0, 1.0)
        return self.head & (self.y > brim)

    def hair_offset(self, a: Appearance) -> np.ndarray:
        """(V,) outward offsets (metres) of the rest vertices along their normals: hair volume
        (and a hat's thickness); zero elsewhere, and on the accessory boxes."""
        out = np.zeros(self.num_vertices, np.float32)
        n = len(self.y)
        hair = self.hair_mask(a)
        lift = np.where(self.head, 0.012, 0.008)
        out[:n][hair] = lift[hair]
        out[:n][self.hat_mask(a)] = 0.016
        return out


# What each vertex shows once painted (`paint`): the garments the appearance code owns in a swap
# (upper, lower, shoes with socks) and what stays with the body.
SKIN, UPPER, LOWER, SHOES, HAIR, HAT, BAG = range(7)


def paint(a: Appearance, regions: BodyRegions) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float32 colours and (V,) int64 parts (`SKIN` ... `BAG`) of every vertex (body and
    accessories) for appearance ``a``."""
    r = regions
    x, y, z = r.x, r.y, r.z
    n = len(y)
    col = np.empty((n, 3))
    col[:] = a.skin

    # shoes and socks
    shoes = (y < a.shoe_top) & r.leg
    socks = r.leg & (y >= a.shoe_top) & (y < a.shoe_top + 0.07)
    # lower garment
    bottom = {"trousers": a.shoe_top + 0.015, "capri": -0.86, "shorts": -0.56}[a.lower_kind]
    lower = r.leg & ~r.arm & (y < a.waist_y) & (y > bottom)
    # upper garment
    sleeve_end = {"short": 0.11, "three_quarter": 0.36, "long": WRIST_A}[a.sleeves]
    # the neck hole: the neck itself, and a crew or V opening that dips at the front
    radius = np.sqrt(x * x + (z + 0.01) ** 2)
    opening = (y > 0.255 - a.neckline * np.clip((z - 0.01) / 0.05, 0, 1)
               * np.clip(1 - np.abs(x) / 0.07, 0, 1)) & (radius < 0.085)
    body_part = r.torso & ~r.neck & (y > a.hem_y) & ~opening
    sleeve = r.arm & (r.arm_a < sleeve_end)
    upper = body_part | sleeve

    part = np.full(n, SKIN)
    if a.lower_kind == "shorts":
        col[socks] = a.socks_color
        part[socks] = SHOES
    col[lower] = a.lower_color
    part[lower] = LOWER
    if a.lower_pattern == "side_stripe":
        col[lower & (np.abs(r.leg_side - 0.055) < 0.012)] = a.lower_color2
    col[shoes] = a.shoes_color
    part[shoes] = SHOES

    col[upper] = a.upper_color
    part[upper] = UPPER
    p = a.upper_pattern
    if p == "stripes":
        band = ((y - 0.3) % a.stripe_period) < a.stripe_period * a.stripe_duty
        col[body_part & band] = a.upper_color2
    elif p == "logo":
        lx, ly, hw, hh, rnd = a.logo
        dx, dy = (x - lx) / hw, (y - ly) / hh
        inside = (dx * dx + dy * dy < 1) if rnd else (np.abs(dx) < 1) & (np.abs(dy) < 1)
        col[body_part & (z > 0.02) & inside] = a.upper_color2
    elif p == "back_print":
        lx, ly, hw, hh, rnd = a.logo
        inside = (np.abs((x + lx) / (1.6 * hw)) < 1) & (np.abs((y - ly + 0.02) / (1.6 * hh)) < 1)
        col[body_part & (z < -0.02) & inside] = a.upper_color2
    elif p == "two_tone":
        col[upper & (y > a.split_y)] = a.upper_color2
    elif p == "sleeves":
        col[sleeve & (r.arm_a > 0.03)] = a.upper_color2
    elif p == "open_jacket":
        half = 0.035 + 0.3 * a.stripe_duty * 0.1
        col[body_part & (z > 0.0) & (np.abs(x) < half) & (y > a.hem_y + 0.02)] = a.upper_color2

    # bag straps over the upper garment
    if a.bag == "backpack":
        strap = (np.abs(np.abs(x) - 0.085) < 0.02) & (y > -0.02) & r.torso & (y < 0.32)
        col[strap & ~r.neck] = a.bag_color
        part[strap & ~r.neck] = BAG
    elif a.bag == "shoulder_bag":
        # a band from the left shoulder (+x) to the right hip (-x), front and back
        d = np.abs((y - 0.26) - (x - 0.12) * (0.46 / 0.29)) / np.sqrt(1 + (0.46 / 0.29) ** 2)
        band = (d < 0.016) & r.torso & (y > -0.26) & ~r.neck
        col[band] = a.bag_color
        part[band] = BAG

    hair = r.hair_mask(a)
    col[hair] = a.hair_color
    part[hair] = HAIR
    hat = r.hat_mask(a)
    col[hat] = a.hat_color
    part[hat] = HAT

    # fabric texture: a little per-vertex brightness noise, fixed per identity
    rng = np.random.default_rng(a.fabric_seed)
    noise = 1.0 + rng.normal(0.0, 0.035, n)
    skin = ~(upper | lower | shoes | hair | hat)
    noise[skin] = 1.0 + 0.3 * (noise[skin] - 1.0)
    col *= noise[:, None]

    out = np.empty((regions.num_vertices, 3))
    out[:n] = col
    out[n:] = a.bag_color
    parts = np.full(regions.num_vertices, BAG)
    parts[:n] = part
    return np.clip(out, 0.0, 1.0).astype(np.float32), parts
