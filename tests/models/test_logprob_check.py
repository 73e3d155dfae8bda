"""The fused log-prob self-check on tiny random configs of the families obliviate meets: Qwen2, Llama and Gemma 3
pass; Gemma 2's final-logit soft-capping is refused by the config check, and the numeric check catches it too."""
import pytest
import torch
from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig,
                          LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

from obliviate.models import logprobs

V = 97
COMMON = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (2, 11), generator=g)
    targets = torch.full_like(ids, logprobs.IGNORE)
    targets[:, 4:-1] = ids[:, 5:]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "targets": targets}


def build(cls, config):
    torch.manual_seed(0)
    return cls(config).eval()


@pytest.mark.parametrize("cls,config", [
    (Qwen2ForCausalLM, Qwen2Config(**COMMON)),
    (LlamaForCausalLM, LlamaConfig(**COMMON)),
    (Gemma3ForCausalLM, Gemma3TextConfig(**COMMON, head_dim=8, sliding_window=4, final_logit_softcapping=None)),
], ids=["qwen2", "llama", "gemma3"])
def test_supported_families_match_their_own_logits(cls, config):
    model = build(cls, config)
    error = logprobs.verify_logprobs(model, batch(), tolerance=1e-3)
    assert error < 1e-4


def test_gemma2_soft_capping_is_refused_and_would_be_caught():
    model = build(Gemma2ForCausalLM, Gemma2Config(**COMMON, head_dim=8, final_logit_softcapping=5.0,
                                                  tie_word_embeddings=False))
    with torch.no_grad():
        model.lm_head.weight.mul_(100)  # logits of a trained model's size (|z| ~ 10), where the cap bites
    with pytest.raises(ValueError, match="final_logit_softcapping=5.0"):
        logprobs.verify_logprobs(model, batch(), tolerance=1e-3)
    assert logprobs.logprob_error(model, batch()) > 0.1  # without the config check, the numbers are wrong
    plain = build(Gemma2ForCausalLM, Gemma2Config(**COMMON, head_dim=8, final_logit_softcapping=None))
    assert logprobs.verify_logprobs(plain, batch(), tolerance=1e-3) < 1e-4


def test_a_wrong_output_layer_fails_the_numeric_check():
    model = build(LlamaForCausalLM, LlamaConfig(**COMMON))
    model.lm_head.register_forward_hook(lambda module, args, out: out * 3)  # a transform the config does not name
    with pytest.raises(ValueError, match="differ from the model's own"):
        logprobs.verify_logprobs(model, batch(), tolerance=1e-3)


def test_verified_once_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    model = build(LlamaForCausalLM, LlamaConfig(**COMMON))
    first = logprobs.verify_once(model, batch(), key="k")
    model.lm_head.register_forward_hook(lambda module, args, out: out * 3)
    assert logprobs.verify_once(model, batch(), key="k") == first  # recorded: not recomputed
    assert (tmp_path / "logprob-check" / "k.json").is_file()
