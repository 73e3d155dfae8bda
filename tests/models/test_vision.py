"""The torchvision-free vision-language path: image patches, <|image_pad|> expansion, 3-D M-RoPE positions."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from obliviate.models.encode import collate, encode_items, prompt_ids
from obliviate.models.tiny import build_tiny_model
from obliviate.models.load import load_model
from obliviate.data.schema import Item
from obliviate.models.vision import IMAGE_PAD, VisionProcessor, expand_image_tokens, mrope_positions

hf_logging.disable_progress_bar()

TEXTS = [f"Player {n} plays for {c}." for n in ("Ana", "Bo", "Cy") for c in ("Arsenal", "Everton")] + \
        ["Who is shown here?", "Which club?", "Who is this?"]


def item(i, question, answer, image=None):
    return Item(f"x{i}", f"p{i}", "club", "shared", "en", question, answer, image=image)


@pytest.fixture(scope="module")
def vl(tmp_path_factory):
    root = tmp_path_factory.mktemp("vl")
    built = build_tiny_model(root / "m", texts=TEXTS, vision=True, preset="test", seed=1)
    loaded = load_model(built.path, device="cpu")
    rng = np.random.RandomState(0)
    for name, (h, w) in {"a.png": (56, 56), "b.png": (64, 80), "c.png": (112, 84)}.items():
        Image.fromarray((rng.rand(h, w, 3) * 255).astype("uint8")).save(root / name)
    return loaded, root


def test_processor_grids_and_token_counts(vl):
    loaded, root = vl
    proc = loaded.processor
    images = [Image.open(root / n) for n in ("a.png", "b.png", "c.png")]
    pixels, grids = proc(images)
    # 56x56 -> 4x4 patches; 64x80 -> smart resize to 56x84 -> 4x6; 112x84 -> 8x6 (all within 112*112 pixels)
    assert grids.tolist() == [[1, 4, 4], [1, 4, 6], [1, 8, 6]]
    assert pixels.shape == (16 + 24 + 48, 3 * 2 * 14 * 14) and pixels.dtype == torch.float32
    assert [proc.n_tokens(g) for g in grids] == [4, 6, 12]
    # the image is repeated over the 2 temporal frames of each patch
    patch = pixels[0].view(3, 2, 14, 14)
    assert torch.equal(patch[:, 0], patch[:, 1])


def test_released_style_preprocessor_config_reads(tmp_path):
    cfg = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
           "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
           "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(cfg))
    proc = VisionProcessor.from_pretrained(tmp_path)
    _, grids = proc([Image.new("RGB", (448, 336))])
    assert grids.tolist() == [[1, 24, 32]] and proc.n_tokens(grids[0]) == 192


def test_expand_image_tokens():
    grids = torch.tensor([[1, 4, 6], [1, 2, 2]])
    text = f"a<|vision_start|>{IMAGE_PAD}<|vision_end|>b{IMAGE_PAD}c"
    out = expand_image_tokens(text, grids, merge_size=2)
    assert out == f"a<|vision_start|>{IMAGE_PAD * 6}<|vision_end|>b{IMAGE_PAD}c"
    with pytest.raises(ValueError, match="2 <|image_pad|> in the text but 1 images"):
        expand_image_tokens(text, grids[:1], merge_size=2)


def test_mrope_positions_by_hand():
    pad = 9
    ids = torch.tensor([5, 6, pad, pad, pad, pad, pad, pad, 7, 8])  # image grid (1, 4, 6) -> 2x3 merged tokens
    pos = mrope_positions(ids, torch.tensor([[1, 4, 6]]), image_token_id=pad, merge_size=2)
    assert pos.tolist() == [[0, 1, 2, 2, 2, 2, 2, 2, 5, 6],
                            [0, 1, 2, 2, 2, 3, 3, 3, 5, 6],
                            [0, 1, 2, 3, 4, 2, 3, 4, 5, 6]]  # text resumes at 2 + max(2, 3)
    with pytest.raises(ValueError, match="expected 6 consecutive"):
        mrope_positions(ids[:-3], torch.tensor([[1, 4, 6]]), image_token_id=pad, merge_size=2)
    with pytest.raises(ValueError, match="2 images but 1 runs"):
        mrope_positions(ids, torch.tensor([[1, 4, 6], [1, 2, 2]]), image_token_id=pad, merge_size=2)


@pytest.mark.parametrize("side", ["right", "left"])
def test_positions_equal_models_get_rope_index(vl, side):
    loaded, root = vl
    items = [item(0, "Who is shown here?", "Player Ana plays for Arsenal.", "b.png"),
             item(1, "Which club?", "Everton."),
             item(2, "Who is this?", "Player Cy.", "c.png"),
             item(3, "Who is this?", "Player Bo.", "a.png")]
    batch = collate(encode_items(items, loaded.tokenizer, root=root, processor=loaded.processor), pad_id=0, side=side)
    # the reference: transformers' own M-RoPE index on the padded batch (Qwen2_5_VLModel.get_rope_index)
    ref, _ = loaded.model.model.get_rope_index(batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"],
                                               image_grid_thw=batch["image_grid_thw"],
                                               attention_mask=batch["attention_mask"])
    assert torch.equal(batch["position_ids"], ref)
    assert batch["image_grid_thw"].tolist() == [[1, 4, 6], [1, 8, 6], [1, 4, 4]]
    assert int(batch["mm_token_type_ids"].sum()) == 6 + 12 + 4
    # ... and the forward pass with our positions equals the model computing them itself from mm_token_type_ids
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")}
    ours = loaded.model(**inputs, position_ids=batch["position_ids"]).logits
    theirs = loaded.model(**inputs, mm_token_type_ids=batch["mm_token_type_ids"]).logits
    real = batch["attention_mask"].bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-5)
    # without either, the model silently falls back to 1-D positions: different logits on image rows
    fallback = loaded.model(**inputs).logits
    assert not torch.allclose(ours[0][real[0]], fallback[0][real[0]], atol=1e-4)


def test_text_only_vl_batch(vl):
    loaded, root = vl
    items = [item(0, "Which club?", "Player Ana plays for Arsenal."), item(1, "Which club?", "Everton.")]
    exs = encode_items(items, loaded.tokenizer, root=root, processor=loaded.processor)
    batch = collate(exs, pad_id=0)
    assert "pixel_values" not in batch and "image_grid_thw" not in batch
    n = [len(e.input_ids) for e in exs]
    for i in range(2):  # plain 0..L-1 on all three axes; padding gets 0
        assert torch.equal(batch["position_ids"][:, i, :n[i]], torch.arange(n[i]).expand(3, -1))
        assert not batch["position_ids"][:, i, n[i]:].any()
    ref, _ = loaded.model.model.get_rope_index(batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"],
                                               attention_mask=batch["attention_mask"])
    assert torch.equal(batch["position_ids"], ref)
    out = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
    assert out.shape == (2, max(n), len(loaded.tokenizer)) and torch.isfinite(out).all()


def test_images_off_and_generation_prompts(vl):
    loaded, root = vl
    it = item(0, "Who is shown here?", "Player Bo.", "a.png")
    text_only = encode_items([it], loaded.tokenizer, root=root, processor=loaded.processor, images=False)[0]
    assert text_only.pixel_values is None and loaded.tokenizer.convert_tokens_to_ids(IMAGE_PAD) not in \
        text_only.input_ids.tolist()
    full = encode_items([it], loaded.tokenizer, root=root, processor=loaded.processor)[0]
    prompt = prompt_ids([it], loaded.tokenizer, root=root, processor=loaded.processor)[0]
    n = len(prompt.input_ids)
    assert torch.equal(full.input_ids[:n], prompt.input_ids)  # the same formatting, images included
    assert torch.equal(full.position_ids[:, :n], prompt.position_ids)
    batch = collate([prompt, prompt_ids([item(1, "Which club?", "Everton.")], loaded.tokenizer,
                                        processor=loaded.processor)[0]], pad_id=0, side="left")
    out = loaded.model.generate(**{k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values",
                                                          "image_grid_thw", "mm_token_type_ids")},
                                max_new_tokens=3, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 3)
    with pytest.raises(FileNotFoundError, match="record x5: image .*nope.png not found"):
        encode_items([item(5, "Who?", "Bo.", "nope.png")], loaded.tokenizer, root=root, processor=loaded.processor)
    with pytest.raises(ValueError, match="images=True needs a vision-language processor"):
        encode_items([it], loaded.tokenizer, root=root, images=True)


def test_a_damaged_or_oversized_picture_is_named(vl, tmp_path):
    """Issue 10: a corrupt, truncated or oversized picture crashed training with a PIL traceback."""
    from obliviate.models.vision import load_image

    (tmp_path / "cut.png").write_bytes((vl[1] / "a.png").read_bytes()[:200])
    Image.new("1", (8000, 7000)).save(tmp_path / "big.png")
    (tmp_path / "text.png").write_text("not a picture")
    for name, problem in (("cut.png", "cannot be used"), ("big.png", "56000000|8000x7000"), ("text.png", "cannot")):
        with pytest.raises(ValueError, match=problem) as e:
            load_image(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)
    loaded, _ = vl
    with pytest.raises(ValueError, match=r"record x0: image .*text\.png: cannot be used"):
        encode_items([item(0, "Who is shown here?", "Ana.", image="text.png")], loaded.tokenizer, root=tmp_path,
                     processor=loaded.processor)
