"""The transformers backend: adapters change the answers, left-padded batches equal one-by-one generation, and a
vision-language batch uses the 3-D (M-RoPE) positions."""
import shutil

import pytest
import torch

from obliviate.eval.backend import Request
from obliviate.eval.backend_hf import HfBackend
from obliviate.models.load import load_model

from tests.eval.lora_setup import NEW, agree


def test_adapters_change_answers(hf, gen_items):
    reqs = [Request(name, it) for name in (None, "a0", "a1") for it in gen_items]
    gens = hf.generate_full(reqs)
    n = len(gen_items)
    base, a0, a1 = gens[:n], gens[n:2 * n], gens[2 * n:]
    assert sum(x.token_ids != y.token_ids for x, y in zip(base, a0)) >= n // 2
    assert sum(x.token_ids != y.token_ids for x, y in zip(a0, a1)) >= n // 2
    assert len({g.token_ids for g in base}) > 3  # the perturbed base model does not answer everything alike
    assert all(0 < len(g.token_ids) <= NEW for g in gens)
    assert hf.generate(reqs[:3]) == [g.text for g in gens[:3]]
    assert hf.device == torch.device("cpu") and hf.dtype == torch.float32  # fp32 on the CPU by default


def test_hf_left_padding_matches_one_by_one(gen_setup, hf, gen_items):
    model, named = gen_setup
    single = HfBackend(model, named, max_new_tokens=NEW, batch_size=1, device="cpu")
    reqs = [Request("a1", it) for it in gen_items[:12]] + [Request(None, it) for it in gen_items[:4]]
    agree(hf.generate_full(reqs), single.generate_full(reqs), "batched vs batch_size=1")
    single.close()


def test_unknown_adapter_is_refused(hf, gen_items):
    with pytest.raises(ValueError, match="unknown adapter 'zz'"):
        hf.generate([Request("zz", gen_items[0])])


def test_vl_generate_uses_3d_positions(toy_vl_model, toy_data, tmp_path):
    """transformers' generate on a left-padded vision-language batch equals a greedy loop of full forwards with
    explicitly computed M-RoPE positions, one example at a time, unpadded."""
    from obliviate.data.schema import load_items
    from obliviate.models.encode import prompt_ids
    from obliviate.models.vision import IMAGE_PAD, mrope_positions

    model_dir = tmp_path / "vl"
    shutil.copytree(toy_vl_model, model_dir)
    loaded = load_model(model_dir, device="cpu")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    loaded.model.save_pretrained(model_dir)
    items = load_items(toy_data["images"])
    picked = [it for it in items if it.image][:2] + [it for it in items if not it.image][:1]
    root = toy_data["images"].parent
    backend = HfBackend(model_dir, max_new_tokens=5, batch_size=3, device="cpu")
    gens = backend.generate_full([Request(None, it, root) for it in picked])
    model, tok, proc = backend._group_model(()), backend.tokenizer, backend.processor
    pad_id = tok.convert_tokens_to_ids(IMAGE_PAD)
    for it, gen in zip(picked, gens):
        ex = prompt_ids([it], tok, root=root, processor=proc)[0]
        ids = ex.input_ids
        for _ in range(len(gen.token_ids)):
            pos = mrope_positions(ids, ex.image_grid_thw, image_token_id=pad_id, merge_size=proc.merge_size)
            with torch.no_grad():
                logits = model(input_ids=ids[None], position_ids=pos[:, None], pixel_values=ex.pixel_values,
                               image_grid_thw=ex.image_grid_thw).logits[0, -1]
            ids = torch.cat([ids, logits.argmax().view(1)])
        assert tuple(ids[len(ex.input_ids):].tolist()) == gen.token_ids, it.id
