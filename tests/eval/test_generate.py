"""Generation backends: vLLM (CPU, in-process, multi-LoRA) and transformers agree token for token.

The model is the test preset built on the toy corpus, with its weights perturbed (seeded) so that greedy answers
vary from prompt to prompt, and LoRA adapters whose B matrices are random (seeded) so each adapter changes the
answers. Measured on this machine (fp32): every answer token-identical, log-probs within ~2e-6; the stated
tolerance is 1e-4. One vLLM engine per module (vLLM starts in seconds on the CPU).
"""
import shutil

import pytest
import torch

from obliviate.models import adapters
from obliviate.eval.generate import (HfBackend, choose_backend, group_by_below, mc_gold, mc_item, read_stacks,
                                       vllm_available)
from obliviate.models.tiny import build_tiny_model
from obliviate.models.load import load_model
from obliviate.data.schema import Item

from tests import toy

LOGP_TOL = 1e-4
NEW = 10


def make_setup(root, *, n_adapters=2, stacked=True):
    """A perturbed tiny model at root/model, adapters a0..a{n-1} on it and, if `stacked`, c on top of a0."""
    build_tiny_model(root / "model", texts=toy.corpus(), preset="test", seed=0)
    loaded = load_model(root / "model", device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    loaded.model.save_pretrained(root / "model")
    out = {}

    def lora(name, parents, seed):
        model = adapters.merge_parents(load_model(root / "model", device="cpu").model, parents)
        peft = adapters.add_trainable_lora(model, adapters.LoraOptions(r=8, alpha=16))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
        peft.save_pretrained(root / name)
        if parents:
            adapters.write_stack(root / name, adapters.read_stack(root / "model", parents[-1]))
        out[name] = root / name

    for k in range(n_adapters):
        lora(f"a{k}", (), seed=k + 1)
    if stacked:
        lora("c", (str(out["a0"]),), seed=99)
    return root / "model", out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="module")
def items():
    return toy.text_items()  # 32 items, en + fr


@pytest.fixture(scope="module")
def hf(setup):
    model, named = setup
    backend = HfBackend(model, named, max_new_tokens=NEW, batch_size=8, device="cpu")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def vllm(setup, tmp_path_factory):
    if not vllm_available():
        pytest.skip("vLLM is not installed or does not import here")
    from obliviate.eval.generate import VllmBackend

    model, named = setup
    backend = VllmBackend(model, named, max_new_tokens=NEW, cache_dir=tmp_path_factory.mktemp("cache"),
                          kv_cache_bytes=64 << 20)
    yield backend
    backend.close()


def _agree(a, b, what):
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.token_ids == y.token_ids, f"{what}: request {i}: {x.token_ids} != {y.token_ids}"
        assert len(x.logprobs) == len(x.token_ids) == len(y.logprobs)
        err = max((abs(p - q) for p, q in zip(x.logprobs, y.logprobs)), default=0.0)
        assert err < LOGP_TOL, f"{what}: request {i}: log-probs differ by {err}"
    assert len(a) == len(b)


def test_adapters_change_answers(hf, items):
    reqs = [(name, it, None) for name in (None, "a0", "a1") for it in items]
    gens = hf.generate_full(reqs)
    n = len(items)
    base, a0, a1 = gens[:n], gens[n:2 * n], gens[2 * n:]
    assert sum(x.token_ids != y.token_ids for x, y in zip(base, a0)) >= n // 2
    assert sum(x.token_ids != y.token_ids for x, y in zip(a0, a1)) >= n // 2
    assert len({g.token_ids for g in base}) > 3  # the perturbed base model does not answer everything alike
    assert all(0 < len(g.token_ids) <= NEW for g in gens)


def test_hf_left_padding_matches_one_by_one(setup, hf, items):
    model, named = setup
    single = HfBackend(model, named, max_new_tokens=NEW, batch_size=1, device="cpu")
    reqs = [("a1", it, None) for it in items[:12]] + [(None, it, None) for it in items[:4]]
    _agree(hf.generate_full(reqs), single.generate_full(reqs), "batched vs batch_size=1")
    single.close()


def test_vllm_matches_hf_with_and_without_lora(vllm, hf, items):
    # the base model and two adapters in ONE vLLM generate call; base requests ride on a zero adapter
    reqs = [(name, it, None) for name in (None, "a0", "a1") for it in items]
    _agree(vllm.generate_full(reqs), hf.generate_full(reqs), "vllm vs hf")
    assert vllm.generate(reqs[:3]) == hf.generate(reqs[:3])


def test_multi_adapter_batch_equals_per_adapter_runs(vllm, items):
    names = (None, "a0", "a1")
    mixed = [(names[i % 3], it, None) for i, it in enumerate(items)]  # interleaved adapters
    together = vllm.generate_full(mixed)
    for name in names:
        idx = [i for i, r in enumerate(mixed) if r[0] == name]
        alone = vllm.generate_full([mixed[i] for i in idx])
        _agree([together[i] for i in idx], alone, f"adapter {name} alone vs in the mixed batch")


def test_stacked_adapter_vllm_matches_hf(vllm, hf, setup, items):
    """c sits on a0: vLLM serves it as a LoRA on a cached base+a0 model (a second engine), transformers merges a0
    in memory; both must agree, and c must differ from a0."""
    reqs = [("c", it, None) for it in items[:8]] + [("a0", it, None) for it in items[:8]]
    v, h = vllm.generate_full(reqs), hf.generate_full(reqs)
    _agree(v, h, "stacked adapter")
    assert sum(x.token_ids != y.token_ids for x, y in zip(h[:8], h[8:])) >= 4
    merged = list(vllm.cache_dir.iterdir())
    assert any((d / "obliviate_merged.json").is_file() for d in merged)


def test_groups_and_stacks(setup):
    model, named = setup
    stacks = read_stacks(model, {**named, "run": named["a1"]})
    groups = group_by_below(stacks, [None, "a0", "c", "a1"])
    assert groups == {(): [None, "a0", "a1"], (str(named["a0"].resolve()),): ["c"]}
    with pytest.raises(ValueError, match="unknown adapter"):
        HfBackend(model, {"a0": named["a0"]}, device="cpu").generate([("zz", toy.text_items()[0], None)])


def test_run_folder_is_accepted(setup, tmp_path):
    model, named = setup
    run = tmp_path / "run"
    shutil.copytree(named["a1"], run / "adapter")
    stacks = read_stacks(model, {"r": run})
    assert stacks["r"].parents[-1] == str((run / "adapter").resolve())


def test_mc_item():
    it = Item(id="x", entity="p", attribute="club", kind="shared", language="en", question="Which club?",
              answer="He plays for Fulham.", value="Fulham", options=("Arsenal", "Fulham", "Everton"))
    mc = mc_item(it)
    assert mc.question.splitlines() == ["Which club?", "A. Arsenal", "B. Fulham", "C. Everton",
                                        "Answer with the option's letter from the given choices directly."]
    assert mc_gold(it) == "B" and mc.id == "x#mc"
    five = Item(id="y", entity="p", attribute="club", kind="shared", language="en", question="q", answer="a b",
                value="a", options=("a", "b", "c", "d", "e"))
    with pytest.raises(ValueError, match="A-D"):
        mc_item(five)


def test_choose_backend(setup, toy_vl_model):
    model, _ = setup
    assert choose_backend("hf", model) == "hf"
    if not torch.cuda.is_available():
        assert choose_backend("auto", toy_vl_model) == "hf"
    assert choose_backend("auto", model) == ("vllm" if vllm_available() else "hf")
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tgi", model)


def test_vl_generate_uses_3d_positions(toy_vl_model, toy_data, tmp_path):
    """transformers' generate on a left-padded vision-language batch equals a greedy loop of full forwards with
    explicitly computed M-RoPE positions, one example at a time, unpadded."""
    from obliviate.models.encode import prompt_ids
    from obliviate.data.schema import load_items
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
    gens = backend.generate_full([(None, it, root) for it in picked])
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
