"""One NPO unlearning step, two ways: obliviate's vs the usual eager one.

    fused   LoRA policy; per-token log-probs from the fused kernel (no N×V logits); reference log-probs computed
            once beforehand (cached, as `Unlearner` does) — the step runs one forward and one backward.
    eager   LoRA policy; full logits → log_softmax → gather; a deep-copied frozen reference model runs a second
            forward every step (how open-unlearning's NPO trainer does it).

Both take the same AdamW step on the same random-weight Qwen2 of the chosen shape. Reported per provider: step
time, tokens/s, and peak memory = the resident weights (policy, plus the reference copy for eager) + optimizer
state + the step's own peak. Rows go to the results file like every benchmark's.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from obliviate.bench.kernels import _sync, peak_bytes, time_ms
from obliviate.bench.results import append_rows, device_name, now, row, versions
from obliviate.files import default_device
from obliviate.models.load import load_model
from obliviate.train import losses
from obliviate.models.adapters import add_trainable_lora
from obliviate.models.options import LoraOptions
from obliviate.models.logprobs import IGNORE, token_logps

# name -> (hidden, layers, heads, kv heads, ffn, vocab); "7b" is Qwen2.5-7B's shape, "cpu" keeps a large-ish
# vocabulary (the output layer is where fused and eager differ) on a body a CPU steps through in well under a second.
SHAPES = {"7b": (3584, 28, 28, 4, 18944, 152064), "1.5b": (1536, 28, 12, 2, 8960, 151936),
          "cpu": (256, 2, 4, 2, 512, 32768)}
PROVIDERS = ("eager", "fused")


def build_model(shape: str, dtype: torch.dtype, device: torch.device, *, seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    hidden, layers, heads, kv, ffn, vocab = SHAPES[shape]
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv, intermediate_size=ffn, max_position_embeddings=8192,
                         tie_word_embeddings=shape == "cpu", attn_implementation="sdpa")
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    return model.eval()


def make_batch(vocab: int, batch: int, length: int, device: torch.device, *, seed: int = 0) -> dict:
    """Random tokens; the second half of each row is the 'answer' the loss acts on."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, length), generator=g)
    targets = torch.full_like(ids, IGNORE)
    targets[:, length // 2: -1] = ids[:, length // 2 + 1:]
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "targets": targets.to(device), "loss_mask": (targets != IGNORE).to(device)}


def eager_logps(model, batch) -> torch.Tensor:
    """(B, T) log-probs through the materialised logits, as a plain training script computes them."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)
    safe = batch["targets"].clamp(min=0)
    return logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * batch["loss_mask"]


def make_step(provider: str, model, batch, *, r: int, lr: float = 1e-4):
    """(step function, resident bytes of everything the provider keeps: weights, reference copy, optimizer)."""
    reference = copy.deepcopy(model) if provider == "eager" else None  # frozen copy, before LoRA wraps the policy
    policy = add_trainable_lora(model, LoraOptions(r=r, alpha=2 * r))
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    mask = batch["loss_mask"]
    if provider == "fused":
        with torch.no_grad(), policy.disable_adapter():
            ref = token_logps(policy, batch)  # computed once, like the on-disk reference cache

        def step():
            loss = losses.npo_loss(token_logps(policy, batch), ref, mask)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        def step():
            with torch.no_grad():
                ref = eager_logps(reference, batch)
            loss = losses.npo_loss(eager_logps(policy, batch), ref, mask)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    step()  # creates the optimizer state, so it is resident from here on
    resident = sum(p.numel() * p.element_size() for p in policy.parameters())
    if reference is not None:
        resident += sum(p.numel() * p.element_size() for p in reference.parameters())
    resident += sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                    if torch.is_tensor(t))
    return step, resident


def run(*, shape: str | None = None, model: str | None = None, providers=None, batch: int | None = None,
        length: int | None = None, r: int = 16, dtype: str | None = None, repeats: int | None = None,
        device: str | None = None, results=None, echo=print) -> list[dict]:
    """Time one NPO step per provider. shape: a random Qwen2 of SHAPES; model: a real model instead (a packaged name
    such as gemma3-270m, or a local folder). None options take the device's defaults."""
    dev = default_device(device)
    cuda = dev.type == "cuda"
    shape = shape or ("7b" if cuda else "cpu")
    if model is not None:
        from obliviate.bench.eval import real_model

        model, shape = real_model(model), Path(str(model)).name
    elif shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    dt = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype or ("bf16" if cuda else "fp32")]
    batch, length = batch or (4 if cuda else 2), length or (2048 if cuda else 256)
    repeats = repeats or (10 if cuda else 3)
    providers = list(providers or PROVIDERS)
    rows, env, date, name = [], versions(), now(), device_name(dev)
    tokens = batch * length
    echo(f"NPO step, {shape} ({SHAPES.get(shape, model)}), LoRA r={r}, {batch}×{length} tokens, {dt}, {name}")
    measured = {}
    for i, provider in enumerate(providers, 1):
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; choose among {', '.join(PROVIDERS)}")
        t0 = time.perf_counter()
        net = build_model(shape, dt, dev) if model is None else load_model(model, dtype=dt, device=dev).model
        data = make_batch(net.config.get_text_config().vocab_size, batch, length, dev)
        try:
            step, resident = make_step(provider, net, data, r=r)
            ms = time_ms(step, dev, warmup=1, repeats=repeats)
            peak = resident + peak_bytes(step, dev)
        except torch.cuda.OutOfMemoryError:
            ms, peak = None, None
        del net
        _sync(dev)
        if cuda:
            torch.cuda.empty_cache()
        label = f"{shape}:{batch}x{length}:r{r}"
        common = dict(kernel="npo_step", provider=provider, shape=label, dtype=str(dt).split(".")[-1], device=name,
                      env_versions=env, date=date)
        tok_s = None if ms is None else [tokens / (m * 1e-3) for m in ms]
        rows += [row(metric="step_ms", samples=ms, **common), row(metric="tokens_per_s", samples=tok_s, **common),
                 row(metric="peak_mb", samples=None if peak is None else peak / 2**20, **common)]
        measured[provider] = (None if ms is None else sorted(ms)[len(ms) // 2], peak)
        shown = "out of memory" if ms is None else (f"{measured[provider][0]:9.1f} ms/step  "
                                                    f"{tokens / (measured[provider][0] * 1e-3):10.0f} tok/s  "
                                                    f"peak {peak / 2**20:9.1f} MB")
        echo(f"  [{i}/{len(providers)}] {provider:6s} {shown}   ({time.perf_counter() - t0:.0f}s)")
    if all(measured.get(p, (None,))[0] for p in PROVIDERS):
        (te, pe), (tf, pf) = measured["eager"], measured["fused"]
        echo(f"  fused vs eager: {te / tf:.2f}× tokens/s at {pf / pe:.2f}× peak memory")
    path = append_rows(rows, results)
    echo(f"{len(rows)} rows appended to {path}")
    return rows
