"""Who the people of the world are: body shape, skin, hair and clothes, drawn per identity.

An `Appearance` holds every parameter that decides how a person looks, as plain numbers and
strings (it round-trips through JSON, so the ground-truth sidecar can re-create the person).
`clothing.paint` turns it into per-vertex colours over the body.

Colours come from a palette weighted like the clothes people wear in the street (many black,
dark grey, navy and denim garments, fewer bright ones), jittered in hue, saturation and value,
so that many identities share their main colours. A fraction of identities are *near
duplicates*: they copy another person's outfit, skin and hair and change one detail only (the
shoes, a logo, stripes, a bag, a hat, the hair, the sleeves or the trousers' length), as
strangers in similar clothes do in real data.
"""
from __future__ import annotations

import colorsys
import copy
from dataclasses import dataclass, field

import numpy as np

# name: (RGB in [0, 1], weight as an upper garment, weight as a lower garment)
CLOTH_PALETTE = {
    "black": ((0.07, 0.07, 0.08), 9, 12),
    "charcoal": ((0.19, 0.19, 0.21), 5, 6),
    "grey": ((0.43, 0.43, 0.45), 5, 5),
    "light_grey": ((0.68, 0.68, 0.68), 4, 2),
    "white": ((0.90, 0.90, 0.88), 7, 1),
    "navy": ((0.09, 0.12, 0.28), 5, 5),
    "blue": ((0.15, 0.24, 0.50), 4, 2),
    "denim": ((0.24, 0.34, 0.52), 2, 10),
    "light_blue": ((0.55, 0.70, 0.85), 3, 1.5),
    "khaki": ((0.72, 0.65, 0.48), 3, 5),
    "brown": ((0.38, 0.26, 0.16), 3, 3),
    "olive": ((0.33, 0.36, 0.19), 2, 2),
    "green": ((0.12, 0.40, 0.20), 2.5, 1),
    "burgundy": ((0.42, 0.09, 0.14), 2.5, 1),
    "red": ((0.78, 0.12, 0.12), 3, 1),
    "pink": ((0.90, 0.55, 0.65), 2, 0.5),
    "yellow": ((0.90, 0.78, 0.20), 2, 0.5),
    "orange": ((0.90, 0.45, 0.10), 1.5, 0.5),
    "purple": ((0.38, 0.20, 0.50), 1.5, 0.5),
    "teal": ((0.08, 0.45, 0.45), 1.5, 0.5),
}
SHOE_PALETTE = {"black": ((0.06, 0.06, 0.06), 10), "white": ((0.88, 0.88, 0.86), 6),
                "grey": ((0.45, 0.45, 0.46), 3), "brown": ((0.32, 0.20, 0.12), 3),
                "navy": ((0.10, 0.12, 0.25), 1.5), "red": ((0.70, 0.12, 0.12), 0.8),
                "beige": ((0.76, 0.68, 0.55), 1.5)}
SKIN_TONES = [(0.96, 0.80, 0.69), (0.91, 0.72, 0.60), (0.84, 0.64, 0.50), (0.74, 0.54, 0.40),
              (0.62, 0.44, 0.31), (0.47, 0.32, 0.22), (0.36, 0.24, 0.17)]
HAIR_COLORS = {"black": ((0.05, 0.04, 0.04), 10), "dark_brown": ((0.17, 0.11, 0.07), 8),
               "brown": ((0.33, 0.22, 0.13), 4), "blonde": ((0.72, 0.60, 0.38), 2.5),
               "grey": ((0.62, 0.62, 0.62), 1.5), "auburn": ((0.45, 0.18, 0.09), 1),
               "dyed": ((0.55, 0.25, 0.55), 0.3)}

SLEEVES = ("short", "long", "three_quarter")
UPPER_PATTERNS = ("plain", "stripes", "logo", "two_tone", "sleeves", "open_jacket",
                  "back_print")
LOWER_KINDS = ("trousers", "shorts", "capri")
LOWER_PATTERNS = ("plain", "side_stripe")
HAIR_STYLES = ("short", "long", "bald")
DETAILS = ("shoes", "logo", "stripes", "bag", "hat", "hair", "sleeves", "lower_length",
           "upper_shade")


@dataclass
class Appearance:
    """Everything that decides how one person looks (colours are RGB in [0, 1])."""
    betas: list
    skin: list
    hair_style: str
    hair_color: list
    hat: bool
    hat_color: list
    sleeves: str
    upper_color: list
    upper_pattern: str
    upper_color2: list          # the pattern's second colour (stripes, logo, inner shirt ...)
    stripe_period: float        # metres
    stripe_duty: float
    logo: list                  # (x, y, half width, half height, round 0/1) on the chest
    split_y: float              # two-tone boundary (rest-pose y, metres)
    hem_y: float                # bottom of the upper garment
    neckline: float             # depth of the neckline at the front
    lower_kind: str
    lower_color: list
    lower_pattern: str
    lower_color2: list
    waist_y: float
    shoes_color: list
    shoe_top: float             # y of the top of the shoes (rest pose, soles at -1.17)
    socks_color: list
    bag: str                    # "none" | "backpack" | "shoulder_bag"
    bag_color: list
    fabric_seed: int            # per-vertex fabric texture noise
    stride: float               # walking style
    arm_swing: float
    arm_down: float
    duplicate_of: int = -1      # index of the identity this one copies (near duplicates)
    changed: str = ""           # the one detail that differs from that identity
    extra: dict = field(default_factory=dict)


# What a DG-Net appearance code owns in the world's true swaps: the garments — their colours, patterns
# and cut (sleeve and leg length, hem, neckline, waist) — and the shoes and socks. Everything else
# stays with the structure: body shape, gait, skin, hair (style and colour), hat, bag, and the faint
# per-vertex fabric noise (the world's near duplicates keep it with the body too).
GARMENT_FIELDS = ("sleeves", "upper_color", "upper_pattern", "upper_color2", "stripe_period",
                  "stripe_duty", "logo", "split_y", "hem_y", "neckline", "lower_kind",
                  "lower_color", "lower_pattern", "lower_color2", "waist_y", "shoes_color",
                  "shoe_top", "socks_color")


def dressed(person: Appearance, clothes: Appearance) -> Appearance:
    """``person`` wearing the garments of ``clothes`` (`GARMENT_FIELDS`)."""
    out = copy.deepcopy(person)
    for name in GARMENT_FIELDS:
        setattr(out, name, copy.deepcopy(getattr(clothes, name)))
    return out


def _pick(rng, palette: dict, column: int = 1):
    names = list(palette)
    w = np.array([palette[n][column] for n in names], float)
    return names[rng.choice(len(names), p=w / w.sum())]


def jitter_color(rng, rgb, hue=0.02, sat=0.15, val=0.12) -> list:
    """A shade of ``rgb``: hue shifted and saturation / value scaled a little."""
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = float(np.clip(s * rng.uniform(1 - sat, 1 + sat), 0, 1))
    v = float(np.clip(v * rng.uniform(1 - val, 1 + val), 0, 1))
    return [round(float(c), 4) for c in colorsys.hsv_to_rgb(h, s, v)]


def cloth_color(rng, part: str = "upper", avoid: list | None = None) -> list:
    """A garment colour from `CLOTH_PALETTE` (part "upper" or "lower"), not too close to
    ``avoid`` when given (for a pattern's second colour)."""
    column = 1 if part == "upper" else 2
    for _ in range(20):
        rgb = jitter_color(rng, CLOTH_PALETTE[_pick(rng, CLOTH_PALETTE, column)][0])
        if avoid is None or np.abs(np.subtract(rgb, avoid)).sum() > 0.45:
            return rgb
    return rgb


def _contrast_color(rng, base):
    return cloth_color(rng, "upper", avoid=base)


def sample_logo(rng) -> list:
    return [round(float(rng.uniform(-0.05, 0.05)), 4), round(float(rng.uniform(0.03, 0.13)), 4),
            round(float(rng.uniform(0.035, 0.075)), 4), round(float(rng.uniform(0.03, 0.06)), 4),
            int(rng.integers(2))]


def sample_identity(rng: np.random.Generator, num_betas: int = 10) -> Appearance:
    """A fresh person."""
    betas = rng.normal(0.0, 1.0, num_betas)
    betas[0] = rng.normal(0.0, 1.1)                     # stature varies most
    betas = np.clip(betas, -2.5, 2.5)
    upper = cloth_color(rng, "upper")
    pattern = rng.choice(UPPER_PATTERNS, p=[0.40, 0.12, 0.14, 0.08, 0.09, 0.10, 0.07])
    sleeves = rng.choice(SLEEVES, p=[0.45, 0.45, 0.10])
    if pattern == "open_jacket":
        sleeves = "long"
    lower_kind = rng.choice(LOWER_KINDS, p=[0.72, 0.20, 0.08])
    hair_style = rng.choice(HAIR_STYLES, p=[0.62, 0.30, 0.08])
    shoe_top = float(rng.uniform(-1.10, -1.05)) if rng.random() > 0.1 else \
        float(rng.uniform(-1.0, -0.95))                 # boots
    bag = rng.choice(("none", "backpack", "shoulder_bag"), p=[0.6, 0.25, 0.15])
    return Appearance(
        betas=[round(float(b), 4) for b in betas],
        skin=jitter_color(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 0.01, 0.08, 0.05),
        hair_style=str(hair_style),
        hair_color=jitter_color(rng, HAIR_COLORS[_pick(rng, HAIR_COLORS)][0], 0.01, 0.1, 0.1),
        hat=bool(rng.random() < 0.08),
        hat_color=cloth_color(rng, "upper"),
        sleeves=str(sleeves),
        upper_color=upper,
        upper_pattern=str(pattern),
        upper_color2=_contrast_color(rng, upper),
        stripe_period=round(float(rng.uniform(0.04, 0.09)), 4),
        stripe_duty=round(float(rng.uniform(0.3, 0.6)), 3),
        logo=sample_logo(rng),
        split_y=round(float(rng.uniform(0.0, 0.12)), 4),
        hem_y=round(float(rng.uniform(-0.32, -0.2)), 4),
        neckline=round(float(rng.uniform(0.01, 0.08)), 4),
        lower_kind=str(lower_kind),
        lower_color=cloth_color(rng, "lower"),
        lower_pattern=str(rng.choice(LOWER_PATTERNS, p=[0.9, 0.1])),
        lower_color2=_contrast_color(rng, upper),
        waist_y=round(float(rng.uniform(-0.2, -0.14)), 4),
        shoes_color=jitter_color(rng, SHOE_PALETTE[_pick(rng, SHOE_PALETTE)][0], 0.01, 0.1, 0.1),
        shoe_top=round(shoe_top, 4),
        socks_color=cloth_color(rng, "lower") if rng.random() < 0.5 else [0.9, 0.9, 0.9],
        bag=str(bag),
        bag_color=cloth_color(rng, "lower"),
        fabric_seed=int(rng.integers(2 ** 31)),
        stride=round(float(rng.uniform(0.7, 1.1)), 3),
        arm_swing=round(float(rng.uniform(0.5, 1.3)), 3),
        arm_down=round(float(rng.uniform(1.38, 1.48)), 3),
    )


def near_duplicate(rng: np.random.Generator, base: Appearance, index: int,
                   new_body: Appearance) -> Appearance:
    """A person dressed like ``base`` (identity ``index``) who differs in one detail; body shape
    and walking style come from ``new_body`` (another person wearing the same outfit)."""
    a = copy.deepcopy(base)
    a.betas, a.stride, a.arm_swing = new_body.betas, new_body.stride, new_body.arm_swing
    a.fabric_seed = new_body.fabric_seed
    detail = str(rng.choice(DETAILS))
    if detail == "shoes":
        a.shoes_color = jitter_color(rng, SHOE_PALETTE[_pick(rng, SHOE_PALETTE)][0])
        while np.abs(np.subtract(a.shoes_color, base.shoes_color)).sum() < 0.4:
            a.shoes_color = jitter_color(rng, SHOE_PALETTE[_pick(rng, SHOE_PALETTE)][0])
    elif detail == "logo":
        if a.upper_pattern == "logo":
            a.upper_pattern = "plain" if rng.random() < 0.5 else "logo"
            a.upper_color2 = _contrast_color(rng, a.upper_color)
            a.logo = sample_logo(rng)
        else:
            a.upper_pattern, a.logo = "logo", sample_logo(rng)
    elif detail == "stripes":
        a.upper_pattern = "plain" if a.upper_pattern == "stripes" else "stripes"
    elif detail == "bag":
        others = [b for b in ("none", "backpack", "shoulder_bag") if b != a.bag]
        a.bag = str(rng.choice(others))
        a.bag_color = cloth_color(rng, "lower")
    elif detail == "hat":
        a.hat = not a.hat
        a.hat_color = cloth_color(rng, "upper")
    elif detail == "hair":
        a.hair_style = str(rng.choice([h for h in HAIR_STYLES if h != a.hair_style]))
        a.hair_color = jitter_color(rng, HAIR_COLORS[_pick(rng, HAIR_COLORS)][0])
    elif detail == "sleeves":
        a.sleeves = "short" if a.sleeves != "short" else "long"
        if a.upper_pattern == "open_jacket":
            a.upper_pattern = "plain"
    elif detail == "lower_length":
        a.lower_kind = "shorts" if a.lower_kind != "shorts" else "trousers"
    else:                                           # the same garment in a nearby shade
        a.upper_color = jitter_color(rng, a.upper_color, 0.03, 0.3, 0.3)
    a.duplicate_of, a.changed = index, detail
    return a


def sample_identities(rng: np.random.Generator, count: int, duplicate_fraction: float,
                      num_betas: int = 10) -> list[Appearance]:
    """``count`` people; each after the first is, with probability ``duplicate_fraction``, a
    near duplicate of an earlier original (never of a duplicate)."""
    people: list[Appearance] = []
    for i in range(count):
        fresh = sample_identity(rng, num_betas)
        originals = [j for j, p in enumerate(people) if p.duplicate_of < 0]
        if originals and rng.random() < duplicate_fraction:
            j = int(rng.choice(originals))
            fresh = near_duplicate(rng, people[j], j, fresh)
        people.append(fresh)
    return people
