"""Rendered player pictures for the embedded world: small PNGs whose pixels carry learnable facts.

A picture shows one player from the front: the shirt is his club's kit colour (kit colour = club), with a pattern
and his shirt number in the club's trim colour; shorts in trim colour; his hair colour and skin tone. Pattern and
hair are unique within a club, so colour + pattern + hair identify the player (the number too, if legible). Each
original picture has its own pose (horizontal/vertical offset) and background shade; augmented variants (shift with
edge fill, per-channel colour jitter, brightness offset, Gaussian noise) are the held-out test pictures (and, if
asked, extra training pictures).

Determinism: drawing is integer geometry at twice the size, then a box-filter downscale; randomness comes only from
the `random.Random` / `numpy.random.Generator` handed in; PNGs are written without metadata (no timestamps), so the
same seed gives the same bytes. Sizes: 56×56 by default = 4×4 patches of 14 px = 4 visual tokens after 2×2 merging
in a tiny Qwen2.5-VL (patch 14, merge 2).
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

PATTERNS = ("plain", "stripes", "hoops", "sash", "halves")
HAIR = {"black": (28, 22, 20), "brown": (115, 68, 32), "blond": (232, 200, 110), "red": (185, 72, 30)}
SKIN = ((240, 205, 175), (208, 162, 122), (152, 106, 72), (98, 66, 46))
BACKGROUND = (150, 156, 166)

# 3×5 bitmap digits, rows top to bottom.
_DIGITS = ("111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
           "111100111001111", "111100111101111", "111001010010010", "111101111101111", "111101111001111")


@dataclass(frozen=True)
class Look:
    """What stays the same on every picture of a player."""

    kit: tuple[int, int, int]
    trim: tuple[int, int, int]
    pattern: str
    hair: str
    skin: tuple[int, int, int]
    number: int


@dataclass(frozen=True)
class Pose:
    """What changes between a player's original pictures (in pixels of the final size)."""

    dx: int
    dy: int
    shade: int


def random_pose(rng: random.Random, size: int) -> Pose:
    return Pose(dx=rng.randint(-size // 10, size // 10), dy=rng.randint(-size // 28, size // 28),
                shade=rng.randint(-20, 20))


def render(look: Look, pose: Pose, *, size: int = 56) -> Image.Image:
    """Draw the player on a (2·size)² canvas laid out on a 112-unit grid, then downscale to size×size RGB."""
    big = 2 * size
    u = big / 112  # pixels per grid unit

    def box(x0, y0, x1, y1):  # grid units (relative to the figure's centre line) -> pixel box
        cx, oy = 56 + pose.dx * 112 / size, pose.dy * 112 / size
        return (round((cx + x0) * u), round((y0 + oy) * u), round((cx + x1) * u) - 1, round((y1 + oy) * u) - 1)

    bg = tuple(max(0, min(255, c + pose.shade)) for c in BACKGROUND)
    im = Image.new("RGB", (big, big), bg)
    d = ImageDraw.Draw(im)
    # legs, socks, shorts
    for x0 in (-16, 6):
        d.rectangle(box(x0, 92, x0 + 10, 101), fill=look.skin)
        d.rectangle(box(x0, 101, x0 + 10, 108), fill=look.kit)
    d.rectangle(box(-22, 80, 22, 92), fill=look.trim)
    # arms: sleeve (kit) and forearm (skin)
    for x0, x1 in ((-32, -22), (22, 32)):
        d.rectangle(box(x0, 42, x1, 62), fill=look.kit)
        d.rectangle(box(x0 + 1, 62, x1 - 1, 76), fill=look.skin)
    # torso with its pattern, clipped to the torso by a mask
    torso = box(-22, 40, 22, 80)
    d.rectangle(torso, fill=look.kit)
    pat = Image.new("L", (big, big), 0)
    pd = ImageDraw.Draw(pat)
    if look.pattern == "stripes":
        for x in range(-18, 22, 10):
            pd.rectangle(box(x, 40, x + 4, 80), fill=255)
    elif look.pattern == "hoops":
        for y in range(44, 80, 10):
            pd.rectangle(box(-22, y, 22, y + 4), fill=255)
    elif look.pattern == "sash":
        pd.polygon([box(x, y, x, y)[:2] for x, y in ((-22, 40), (-10, 40), (22, 72), (22, 84))], fill=255)
    elif look.pattern == "halves":
        pd.rectangle(box(0, 40, 22, 80), fill=255)
    clip = Image.new("L", (big, big), 0)
    ImageDraw.Draw(clip).rectangle(torso, fill=255)
    im.paste(look.trim, mask=ImageChops.multiply(pat, clip))
    # number on a kit-coloured plate
    digits = str(look.number)
    w = 4 * len(digits) - 1  # cells: 3 per digit + 1 gap
    d.rectangle(box(-(w * 3) / 2 - 2, 50, (w * 3) / 2 + 2, 69), fill=look.kit)
    for i, ch in enumerate(digits):
        bits = _DIGITS[int(ch)]
        for r in range(5):
            for c in range(3):
                if bits[3 * r + c] == "1":
                    x = -(w * 3) / 2 + (4 * i + c) * 3
                    d.rectangle(box(x, 52 + 3 * r, x + 3, 55 + 3 * r), fill=look.trim)
    # neck, head, hair
    d.rectangle(box(-4, 33, 4, 41), fill=look.skin)
    d.ellipse(box(-11, 13, 11, 35), fill=look.skin)
    d.pieslice(box(-12, 11, 12, 35), 180, 360, fill=HAIR[look.hair])
    return im.resize((size, size), Image.Resampling.BOX)


def augment(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A held-out variant: shift by up to ±size/14 px (edge pixels repeat into the gap), per-channel colour gain
    0.85–1.15, brightness offset ±12, Gaussian noise σ=6."""
    a = np.asarray(im, dtype=np.float32)  # (H, W, 3)
    h, w, _ = a.shape
    m = max(1, h // 14)
    sy, sx = (int(v) for v in rng.integers(-m, m + 1, size=2))
    a = np.pad(a, ((m, m), (m, m), (0, 0)), mode="edge")[m - sy:m - sy + h, m - sx:m - sx + w]
    a = a * rng.uniform(0.85, 1.15, size=3).astype(np.float32) + np.float32(rng.uniform(-12.0, 12.0))
    a = a + rng.normal(0.0, 6.0, size=a.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")


def png_bytes(im: Image.Image) -> bytes:
    """PNG without metadata chunks (no time, no text): identical pixels give identical bytes."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
