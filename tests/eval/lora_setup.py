"""A tiny model whose greedy answers vary, and LoRA adapters that each change them: what the backend, scoring and
command-line tests generate with.

The model is the test preset built on the toy corpus, with its weights perturbed (seeded) so that greedy answers
vary from prompt to prompt; the adapters' B matrices are random (seeded) so each adapter changes the answers.
"""
import torch

from obliviate.models import adapters
from obliviate.models.load import load_model
from obliviate.models.tiny import build_tiny_model

from tests import toy

LOGP_TOL = 1e-4  # per-token log-probs of two backends (measured on this machine, fp32: ~2e-6)
NEW = 10  # new tokens per answer


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


def agree(a, b, what):
    """Two lists of Generations are token-identical, with log-probs within LOGP_TOL."""
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.token_ids == y.token_ids, f"{what}: request {i}: {x.token_ids} != {y.token_ids}"
        assert len(x.logprobs) == len(x.token_ids) == len(y.logprobs)
        err = max((abs(p - q) for p, q in zip(x.logprobs, y.logprobs)), default=0.0)
        assert err < LOGP_TOL, f"{what}: request {i}: log-probs differ by {err}"
    assert len(a) == len(b)
