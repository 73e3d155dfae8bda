"""The vLLM backend (CPU, in-process, multi-LoRA) agrees with transformers token for token, and its caches (merged
base models, zero adapters) are written once, atomically. One vLLM engine per module (it starts in seconds on the
CPU); the cache tests need no vLLM."""
import pytest
import torch
from safetensors.torch import load_file

from obliviate.eval.backend import Request, vllm_available
from obliviate.eval.backend_vllm import merged_base, zero_adapter
from obliviate.models import adapters
from obliviate.models.load import load_model

from tests.eval.lora_setup import NEW, agree


@pytest.fixture(scope="module")
def vllm(gen_setup, tmp_path_factory):
    if not vllm_available():
        pytest.skip("vLLM is not installed or does not import here")
    from obliviate.eval.backend_vllm import VllmBackend

    model, named = gen_setup
    backend = VllmBackend(model, named, max_new_tokens=NEW, cache_dir=tmp_path_factory.mktemp("cache"),
                          kv_cache_bytes=64 << 20)
    yield backend
    backend.close()


def test_vllm_matches_hf_with_and_without_lora(vllm, hf, gen_items):
    # the base model and two adapters in ONE vLLM generate call; base requests ride on a zero adapter
    reqs = [Request(name, it) for name in (None, "a0", "a1") for it in gen_items]
    agree(vllm.generate_full(reqs), hf.generate_full(reqs), "vllm vs hf")
    assert vllm.generate(reqs[:3]) == hf.generate(reqs[:3])


def test_multi_adapter_batch_equals_per_adapter_runs(vllm, gen_items):
    names = (None, "a0", "a1")
    mixed = [Request(names[i % 3], it) for i, it in enumerate(gen_items)]  # interleaved adapters
    together = vllm.generate_full(mixed)
    for name in names:
        idx = [i for i, r in enumerate(mixed) if r.adapter == name]
        alone = vllm.generate_full([mixed[i] for i in idx])
        agree([together[i] for i in idx], alone, f"adapter {name} alone vs in the mixed batch")


def test_stacked_adapter_vllm_matches_hf(vllm, hf, gen_items):
    """c sits on a0: vLLM serves it as a LoRA on a cached base+a0 model (a second engine), transformers merges a0
    in memory; both must agree, and c must differ from a0."""
    reqs = [Request("c", it) for it in gen_items[:8]] + [Request("a0", it) for it in gen_items[:8]]
    v, h = vllm.generate_full(reqs), hf.generate_full(reqs)
    agree(v, h, "stacked adapter")
    assert sum(x.token_ids != y.token_ids for x, y in zip(h[:8], h[8:])) >= 4
    merged = list(vllm.cache_dir.iterdir())
    assert any((d / "obliviate_merged.json").is_file() for d in merged)


def test_merged_base_is_written_once(gen_setup, tmp_path):
    model, named = gen_setup
    assert merged_base(model, [], cache_dir=tmp_path) == model
    parents = [str(named["a0"].resolve())]
    out = merged_base(model, parents, cache_dir=tmp_path)
    assert out.parent == tmp_path and (out / "obliviate_merged.json").is_file()
    stamp = (out / "config.json").stat().st_mtime_ns
    assert merged_base(model, parents, cache_dir=tmp_path) == out
    assert (out / "config.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left beside it
    want = adapters.merge_parents(load_model(model, device="cpu").model, tuple(parents)).state_dict()
    got = load_model(out, device="cpu").model.state_dict()
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0)


def test_zero_adapter_keeps_a_and_zeroes_b(gen_setup, tmp_path):
    _, named = gen_setup
    out = zero_adapter(named["a0"], cache_dir=tmp_path)
    assert out.name.startswith("zero-") and zero_adapter(named["a0"], cache_dir=tmp_path) == out
    like = load_file(str(named["a0"] / "adapter_model.safetensors"))
    zero = load_file(str(out / "adapter_model.safetensors"))
    assert set(zero) == set(like) and any("lora_B" in k for k in zero)
    for k, v in zero.items():
        torch.testing.assert_close(v, torch.zeros_like(v) if "lora_B" in k else like[k], rtol=0, atol=0)
    assert (out / "adapter_config.json").read_bytes() == (named["a0"] / "adapter_config.json").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
