"""`obliviate bench eval`: probes/s of greedy evaluation with many LoRA adapters.

Providers (the same requests, the same greedy decoding, max_new_tokens each):
- vllm-multi: one vLLM engine, every adapter's probes in ONE `generate` call (one LoRARequest per prompt);
- vllm-serial: the same engine, one `generate` call per adapter (how one evaluates adapters one by one);
- hf: transformers batched `generate` (left padding, `HfBackend`), adapters switched with peft `set_adapter`.
The targets this benchmark checks (on a GPU): vllm-multi ≥ 10× hf and ≥ 3× vllm-serial in probes/s.

Sizes:
- cpu (default without CUDA): the "small" tiny Qwen2 (hidden 128, 4 layers) trained on nothing (random weights),
  a tokenizer trained on the world's text, 4 adapters × 200 probes, 32 new tokens;
- gpu: a random-weight Qwen2.5-0.5B-shaped Qwen2 (hidden 896, 24 layers, 14/2 heads, FFN 4864, V = 151936, bf16)
  with 8 adapters × 1000 probes, 64 new tokens.
Probes are the text probes of a generated world (all 9 languages); adapters are LoRA r=16 on the 7 projections
with random B, so every adapter changes the answers. Random-weight models rarely emit an end-of-turn token, so
answers run to max_new_tokens in every provider alike; tokens/s is reported too. Each provider is warmed up
(engine start and first-call costs excluded; engine start reported separately). The fraction of answers that are
token-identical between vllm-multi and hf is reported as a correctness check.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from obliviate.bench import results as res
from obliviate.files import default_device


@dataclass(frozen=True)
class BenchSize:
    """One benchmark size: the model preset, adapters × probes per adapter, new tokens per answer, timed repeats,
    and the weights' dtype."""

    preset: str
    adapters: int
    probes: int
    new_tokens: int
    repeats: int
    dtype: torch.dtype

    @property
    def shape(self) -> str:
        return f"{self.preset}:{self.adapters}x{self.probes}:new{self.new_tokens}"


SIZES = {
    "cpu": BenchSize(preset="small", adapters=4, probes=200, new_tokens=32, repeats=1, dtype=torch.float32),
    "gpu": BenchSize(preset="qwen2.5-0.5b", adapters=8, probes=1000, new_tokens=64, repeats=3, dtype=torch.bfloat16),
}
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16"}
QWEN25_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                  intermediate_size=4864, vocab_size=151936, max_position_embeddings=4096)
PROVIDERS = ("vllm-multi", "vllm-serial", "hf")


def world_probes(folder: Path, n: int) -> list:
    """`n` text probes (all languages) of a seeded world, cycled if the world has fewer."""
    from obliviate.data.schema import load_items
    from obliviate.data.world.build import build_world

    players = max(8, min(80, n // 40 + 1))
    build_world(folder / "world", seed=0, players=players, images_per_player=1, test_variants=0)
    items = [it for it in load_items(folder / "world" / "probes.jsonl") if it.image is None]
    return [items[i % len(items)] for i in range(n)]


def fact_probes(n: int) -> list:
    """`n` questions of the shipped multilingual fact set (all languages), cycled if there are fewer."""
    from obliviate.data.facts import load_facts

    items = load_facts()
    return [items[i % len(items)] for i in range(n)]


def real_model(model: str) -> Path:
    """A packaged model's converted folder (converted once), or a local folder as given."""
    from obliviate.models.gguf import PACKAGED, get_model

    return Path(get_model(model).path) if model in PACKAGED else Path(model)


def build_model(folder: Path, preset: str, texts: list[str], *, dtype: torch.dtype, seed: int = 0) -> Path:
    """A random-weight model directory: a tiny preset, or the Qwen2.5-0.5B shape (vocabulary 151936, the
    tokenizer's ids are a prefix of it)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from obliviate.models.tiny import EOS, PAD, build_tiny_model, train_tokenizer

    out = folder / "model"
    if preset != "qwen2.5-0.5b":
        build_tiny_model(out, texts=texts, preset=preset, seed=seed)
        return out
    tok = train_tokenizer(texts)
    config = Qwen2Config(**QWEN25_05B, tie_word_embeddings=True, rms_norm_eps=1e-6, bos_token_id=None,
                         eos_token_id=tok.convert_tokens_to_ids(EOS), pad_token_id=tok.pad_token_id,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(dtype).eval()
    model.generation_config = GenerationConfig(eos_token_id=[tok.convert_tokens_to_ids(EOS),
                                                             tok.convert_tokens_to_ids(PAD)],
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_adapters(model_dir: Path, n: int, *, r: int = 16, seed: int = 0) -> dict[str, Path]:
    """`n` peft LoRA adapters (r, alpha 2r, all 7 projections) with B ~ N(0, 0.02²) so each changes the model."""
    from obliviate.models.adapters import add_trainable_lora
    from obliviate.models.options import LoraOptions
    from obliviate.models.load import load_model

    out = {}
    base = load_model(model_dir, device="cpu").model
    peft = add_trainable_lora(base, LoraOptions(r=r, alpha=2 * r))
    for k in range(n):
        g = torch.Generator().manual_seed(seed + k)
        with torch.no_grad():
            for name, p in peft.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.02)
                elif "lora_A" in name:
                    p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
        out[f"a{k}"] = model_dir.parent / f"adapter{k}"
        peft.save_pretrained(out[f"a{k}"])
    return out


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return times, value


def _providers(providers, echo) -> list[str]:
    """The providers asked for (default: all), checked; the vLLM ones dropped where vLLM does not import."""
    from obliviate.eval.backend import vllm_available

    providers = list(providers or PROVIDERS)
    bad = [p for p in providers if p not in PROVIDERS]
    if bad:
        raise ValueError(f"unknown providers {bad}; choose among {', '.join(PROVIDERS)}")
    if any(p.startswith("vllm") for p in providers) and not vllm_available():
        echo("vLLM does not import here: measuring hf only")
        providers = [p for p in providers if not p.startswith("vllm")]
    return providers


class _Recorder:
    """Turns each provider's timings and answers into tidy result rows, and echoes a line per provider."""

    def __init__(self, cfg: BenchSize, n_requests: int, device: torch.device, echo: Callable[[str], None]):
        self.tag = dict(kernel="eval", shape=cfg.shape, dtype=DTYPE_NAMES[cfg.dtype], device=res.device_name(device),
                        env_versions=res.versions(), date=res.now())
        self.n, self.echo = n_requests, echo
        self.rows: list[dict] = []
        self.outputs: dict[str, list] = {}

    def record(self, provider: str, times: list[float], gens: list, extra=()) -> None:
        n_tok = sum(len(g.token_ids) for g in gens)
        tag = dict(provider=provider, **self.tag)
        self.rows.extend([res.row(metric="seconds", samples=times, **tag),
                          res.row(metric="probes_per_s", samples=[self.n / t for t in times], **tag),
                          res.row(metric="tokens_per_s", samples=[n_tok / t for t in times], **tag)]
                         + [res.row(metric=m, samples=v, **tag) for m, v in extra])
        self.outputs[provider] = gens
        self.echo(f"  {provider:12s} {self.n / min(times):9.1f} probes/s  {n_tok / min(times):10.1f} tokens/s"
                  f"  ({min(times):.2f} s for {self.n} probes, {n_tok} tokens)")

    def agreement(self) -> None:
        """The fraction of answers token-identical between vllm-multi and hf, when both ran."""
        if "hf" not in self.outputs or "vllm-multi" not in self.outputs:
            return
        same = sum(a.token_ids == b.token_ids for a, b in zip(self.outputs["hf"], self.outputs["vllm-multi"]))
        self.rows.append(res.row(provider="vllm-multi", metric="identical_to_hf", samples=same / self.n, **self.tag))
        self.echo(f"  vllm-multi vs hf: {same}/{self.n} answers token-identical")


def _measure_hf(model_dir, named, items, requests, cfg: BenchSize, batch_size: int, rec: _Recorder) -> None:
    from obliviate.eval.backend import Request
    from obliviate.eval.backend_hf import HfBackend

    hf = HfBackend(model_dir, named, max_new_tokens=cfg.new_tokens, dtype=cfg.dtype, batch_size=batch_size)
    hf.generate_full([Request(n, items[0]) for n in named])  # warm-up: every adapter once
    times, gens = _timed(lambda: hf.generate_full(requests, logprobs=False), cfg.repeats)
    rec.record("hf", times, gens)
    hf.close()


def _measure_vllm(model_dir, named, items, requests, cfg: BenchSize, providers, rec: _Recorder) -> None:
    from obliviate.eval.backend import Request
    from obliviate.eval.backend_vllm import VllmBackend

    t0 = time.perf_counter()
    vb = VllmBackend(model_dir, named, max_new_tokens=cfg.new_tokens)
    vb.engine(())
    start = time.perf_counter() - t0
    vb.generate_full([Request(n, it) for n in named for it in items[:4]])  # warm-up: load every LoRA
    if "vllm-multi" in providers:
        times, gens = _timed(lambda: vb.generate_full(requests, logprobs=False), cfg.repeats)
        rec.record("vllm-multi", times, gens, [("engine_start_s", start)])
    if "vllm-serial" in providers:
        def serial():
            out = []
            for name in named:
                out += vb.generate_full([r for r in requests if r.adapter == name], logprobs=False)
            return out
        times, gens = _timed(serial, cfg.repeats)
        rec.record("vllm-serial", times, gens)
    vb.close()


def run(*, size: str | None = None, model: str | None = None, providers=None, adapters: int | None = None,
        probes: int | None = None, new_tokens: int | None = None, repeats: int | None = None,
        batch_size: int | None = None, results=None, workdir=None, echo=print) -> list[dict]:
    """Measure the providers; append tidy rows (kernel "eval", metric probes_per_s / tokens_per_s / seconds /
    engine_start_s / identical_to_hf) to `results`; return them. size None: gpu when CUDA is available, else cpu;
    adapters, probes, new_tokens, repeats None: the size's; batch_size None: 64 on the CPU, 256 on CUDA.
    model: a real model (a packaged name such as gemma3-270m, or a local folder) instead of the size's random one;
    its probes are the shipped multilingual facts' questions."""
    from obliviate.eval.backend import Request

    size = size or ("gpu" if torch.cuda.is_available() else "cpu")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    overrides = dict(adapters=adapters, probes=probes, new_tokens=new_tokens, repeats=repeats)
    cfg = replace(SIZES[size], **{k: v for k, v in overrides.items() if v is not None})
    if model is not None:
        cfg = replace(cfg, preset=Path(str(model)).name, dtype=SIZES[size].dtype)
    providers = _providers(providers, echo)
    device = default_device()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        if model is None:
            items = world_probes(tmp, cfg.probes)
            model_dir = build_model(tmp, cfg.preset, [t for it in items for t in (it.question, it.answer)],
                                    dtype=cfg.dtype)
        else:
            items, model_dir = fact_probes(cfg.probes), real_model(model)
        named = build_adapters(model_dir, cfg.adapters)
        requests = [Request(name, it) for name in named for it in items]
        rec = _Recorder(cfg, len(requests), device, echo)
        echo(f"bench eval ({size}): {cfg.shape}, {len(requests)} requests, {rec.tag['device']}, "
             f"{rec.tag['dtype']}")
        if "hf" in providers:
            _measure_hf(model_dir, named, items, requests, cfg, batch_size or (64 if device.type == "cpu" else 256),
                        rec)
        if any(p.startswith("vllm") for p in providers):
            _measure_vllm(model_dir, named, items, requests, cfg, providers, rec)
        rec.agreement()
    _ratios(rec.rows, echo)
    path = res.append_rows(rec.rows, results)
    echo(f"appended {len(rec.rows)} rows to {path}")
    return rec.rows


def _ratios(rows, echo) -> None:
    speed = {r["provider"]: r["median"] for r in rows if r["metric"] == "probes_per_s"}
    if "vllm-multi" in speed:
        for other, target in (("hf", 10), ("vllm-serial", 3)):
            if other in speed:
                echo(f"  vllm-multi / {other}: {speed['vllm-multi'] / speed[other]:.2f}x (target >= {target}x "
                     "on a GPU)")
