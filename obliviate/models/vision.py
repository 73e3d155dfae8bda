"""Vision-language inputs for Qwen2-VL / Qwen2.5-VL without torchvision.

transformers' `Qwen2VLImageProcessor`, `Qwen2_5_VLProcessor` and `AutoProcessor` need torchvision (its image and
video processors); `Qwen2VLImageProcessorPil` (numpy + PIL, present in transformers 5.17 and 5.19) does the same
resizing and patching without it. What the full processor would do besides, done here:

1. Image -> patches. The image is resized so both sides are multiples of patch·merge (28) and its area lies in
   [min_pixels, max_pixels]; it is cut into 14x14 patches, each repeated over `temporal_patch_size` = 2 frames:
   pixel_values (P, 3·2·14·14 = 1176), image_grid_thw (N, 3) = (1, H/14, W/14) per image, P = Σ t·h·w.
2. Placeholders. The chat template writes one `<|image_pad|>` per image; the language model sees one token per
   merged 2x2 patch group, so each pad expands to t·h·w / merge² tokens (a 56x56 image: 4x4 patches -> 4 tokens).
3. 3-D positions (M-RoPE, Qwen2-VL paper §2.1). Text tokens get position p on all three axes; an image's tokens
   get (t, row, col) offset by the position where the image starts; text after it resumes at
   start + max(h, w)/merge. The model computes these only when given `mm_token_type_ids`, which the torchvision-free
   path never produces: without them it silently uses 1-D positions 0..T-1 on all three axes. So the caller computes
   them and passes `position_ids` (3, B, T). `mrope_positions` does it per unpadded example (so collation only
   pads); it equals the model's own `Qwen2_5_VLModel.get_rope_index` (in transformers 5.17 and 5.19:
   `model.model.get_rope_index(input_ids, mm_token_type_ids, image_grid_thw=, attention_mask=)`), which skips
   padding, so left- and right-padded rows get the same positions for their real tokens; padded slots get 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from obliviate.files import MAX_IMAGE_PIXELS

IMAGE_PAD = "<|image_pad|>"


class VisionProcessor:
    """Images -> (pixel_values, image_grid_thw), and the token count each image takes in the text."""

    def __init__(self, image_processor):
        self.image_processor = image_processor
        self.merge_size = int(image_processor.merge_size)

    @classmethod
    def from_pretrained(cls, path) -> "VisionProcessor":
        """Read preprocessor_config.json of a model directory (a released Qwen2(.5)-VL one works too)."""
        return cls(_processor_class().from_pretrained(str(path), local_files_only=True))

    def __call__(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_values (P, C·t·p·p) float32 and image_grid_thw (N, 3) int64, images in order."""
        out = self.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        return out["pixel_values"].float(), out["image_grid_thw"].long()

    def n_tokens(self, grid_thw) -> int:
        """Language-model tokens of one image: t·h·w / merge²."""
        t, h, w = (int(x) for x in grid_thw)
        return t * h * w // self.merge_size ** 2


def save_image_processor(out_dir, *, min_pixels: int, max_pixels: int, patch_size: int, temporal_patch_size: int,
                         merge_size: int) -> None:
    """Write preprocessor_config.json in the layout of released Qwen2.5-VL checkpoints, so that transformers'
    AutoProcessor (where torchvision exists) and `VisionProcessor.from_pretrained` both read it."""
    proc = _processor_class()(size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
                                    patch_size=patch_size, temporal_patch_size=temporal_patch_size,
                                    merge_size=merge_size)
    proc.save_pretrained(str(out_dir))
    path = Path(out_dir) / "preprocessor_config.json"
    cfg = json.loads(path.read_text())
    cfg.update(min_pixels=min_pixels, max_pixels=max_pixels, processor_class="Qwen2_5_VLProcessor")
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def load_image(path) -> Image.Image:
    """Open an image file as RGB, fully read (the file is closed on return); a ValueError naming the file when it
    is no picture, is damaged, or exceeds `files.MAX_IMAGE_PIXELS` (checked before decoding)."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{im.width}x{im.height} pixels, over the limit of {MAX_IMAGE_PIXELS:,}")
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"image {path}: cannot be used ({err})") from None


def expand_image_tokens(text: str, grids: torch.Tensor, *, merge_size: int) -> str:
    """Replace the i-th `<|image_pad|>` of `text` by t·h·w/merge² copies for grids[i] (N, 3)."""
    parts = text.split(IMAGE_PAD)
    if len(parts) - 1 != len(grids):
        raise ValueError(f"{len(parts) - 1} {IMAGE_PAD} in the text but {len(grids)} images")
    out = [parts[0]]
    for grid, rest in zip(grids, parts[1:]):
        out += [IMAGE_PAD * (int(torch.prod(grid)) // merge_size ** 2), rest]
    return "".join(out)


def mrope_positions(input_ids: torch.Tensor, grids: torch.Tensor | None, *, image_token_id: int,
                    merge_size: int) -> torch.Tensor:
    """3-D M-RoPE positions (3, T) of one unpadded sequence input_ids (T,) whose image-token runs belong to
    grids (N, 3) in order. Equal to what the model's `get_rope_index` returns for the sequence's real tokens in any
    padded batch (tests/models/test_vision.py checks it), so examples can carry their positions and collation only
    pads them. With s the running start position (0 at the first token):

        text run of length L starting at position s   -> s, s+1, ..., s+L-1 on all three axes; next s += L
        image (t, h, w) patches, h' = h/merge, w' = w/merge, starting at s
                                                       -> (s + i, s + j, s + k) for i<t, j<h', k<w' (row-major);
                                                          next s += max(h', w')  (images have t = 1)
    """
    is_image = (input_ids == image_token_id).tolist()
    grids = [] if grids is None else [tuple(int(x) for x in g) for g in grids]
    axes = ([], [], [])  # temporal, height, width position of each token
    start, t, k = 0, 0, 0
    while t < len(is_image):
        if not is_image[t]:
            for axis in axes:
                axis.append(start)
            start, t = start + 1, t + 1
            continue
        if k == len(grids):
            raise ValueError(f"more {IMAGE_PAD} tokens than images ({len(grids)})")
        gt, h, w = grids[k][0], grids[k][1] // merge_size, grids[k][2] // merge_size
        n = gt * h * w
        if t + n > len(is_image) or not all(is_image[t:t + n]):
            raise ValueError(f"image {k}: expected {n} consecutive {IMAGE_PAD} tokens at position {t}")
        axes[0].extend(start + i for i in range(gt) for _ in range(h * w))
        axes[1].extend(start + j for _ in range(gt) for j in range(h) for _ in range(w))
        axes[2].extend(start + c for _ in range(gt * h) for c in range(w))
        start, t, k = start + max(h, w), t + n, k + 1
    if k != len(grids):
        raise ValueError(f"{len(grids)} images but {k} runs of {IMAGE_PAD} tokens")
    return torch.tensor(axes, dtype=torch.long).reshape(3, len(is_image))


def _processor_class():
    """transformers' Qwen2-VL image processor, imported on first use: it pulls in transformers' processing stack
    (seconds), which text-only jobs never need."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil
