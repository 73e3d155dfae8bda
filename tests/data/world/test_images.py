"""The world's pictures (obliviate.data.world.images): the kit colour shows the club; same randomness, same bytes."""
import io
import random

import numpy as np
from PIL import Image

from obliviate.data.world.images import Look, augment, png_bytes, random_pose, render
from obliviate.data.world.text import CLUBS


def test_pictures_show_the_club(world):
    root, s, _ = world
    kits = np.array([c[1] for c in CLUBS], dtype=np.float32)  # (8, 3)
    right = total = 0
    for p in s["players"]:
        for rel in p["images"] + [h for hs in p["heldout_images"] for h in hs]:
            im = Image.open(root / rel)
            assert im.size == (56, 56) and im.mode == "RGB" and not im.info
            a = np.asarray(im, dtype=np.float32)[20:40, 14:42].reshape(-1, 3)  # (560, 3) torso window
            nearest = np.argmin(((a[:, None, :] - kits[None]) ** 2).sum(-1), axis=1)  # (560,)
            votes = np.bincount(nearest, minlength=len(CLUBS))
            right += CLUBS[int(votes.argmax())][0] == p["facts"]["club"]
            total += 1
    assert right / total > 0.9, (right, total)


def test_same_randomness_same_bytes():
    look = Look(kit=(200, 32, 40), trim=(245, 245, 245), pattern="hoops", hair="red", skin=(98, 66, 46), number=17)

    def picture(seed: int) -> tuple[bytes, bytes]:
        im = render(look, random_pose(random.Random(seed), 56))
        return png_bytes(im), png_bytes(augment(im, np.random.default_rng(seed)))

    assert picture(1) == picture(1) and picture(1) != picture(2)
    assert Image.open(io.BytesIO(picture(1)[0])).size == (56, 56)
