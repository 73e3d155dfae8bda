"""Tokenizers and tiny Qwen2 / Qwen2.5-VL models built from configs.

The embedded world (obliviate.data.world) needs models small enough to learn it from scratch on two CPU cores. They are
real Hugging Face architectures (`Qwen2ForCausalLM`, `Qwen2_5_VLForConditionalGeneration`) with random weights, so
everything downstream (LoRA, the fused log-prob kernels, vLLM, generation) runs on them exactly as on a released
checkpoint, and the same commands take a path to Qwen2.5-7B or Qwen2.5-VL-3B instead.

Tokenizer: byte-level BPE (any text encodes, no unknown token) trained on the world's text, with Qwen's special
tokens and a ChatML chat template. The model's `vocab_size` always equals `len(tokenizer)`: a larger embedding
would let a random model emit ids that decode to nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen2_5_VLConfig,
                          Qwen2_5_VLForConditionalGeneration)

from obliviate.files import check_new
from obliviate.locks import new_folder
from obliviate.models.options import PRESETS
from obliviate.models.vision import save_image_processor

PAD, EOS = "<|endoftext|>", "<|im_end|>"
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>")
SPECIAL_TOKENS = (PAD, "<|im_start|>", EOS) + VISION_TOKENS

# ChatML, as Qwen2.5 writes it but with no default system prompt. A message's content is a string, or a list of
# parts {"type": "image"} / {"type": "text", "text": ...} (the Qwen2-VL convention: an image becomes one
# <|image_pad|> between vision markers, which the caller expands to the image's token count).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Pre-tokenisation: every digit alone (numbers, dates and fees then share digit embeddings, as in Qwen), runs of
# Han characters apart from Latin letters (so a Latin club name inside Chinese text stays its own tokens), then
# GPT-2's byte-level split on letters / spaces / punctuation.
_SPLIT = r"\p{N}|\p{Han}+"

# Image budget of the tiny VL models: 56x56 (4 tokens) up to 112x112 (16 tokens) after smart resizing.
TINY_MIN_PIXELS, TINY_MAX_PIXELS = 56 * 56, 112 * 112


def tokenizer_corpus(items: Iterable) -> list[str]:
    """The texts a tiny model's tokenizer is trained on: the question and the answer of every item."""
    return [t for it in items for t in (it.question, it.answer)]


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Qwen's special tokens (ids 0..7) and a ChatML chat template; eos = <|im_end|>, pad =
    <|endoftext|>, no BOS. Deterministic: the texts are sorted first, so their order does not matter either.
    A corpus too small for `vocab_size` (default 2048) leaves the vocabulary smaller; use `len(tokenizer)`."""
    texts = sorted(texts)
    if not texts:
        raise ValueError("train_tokenizer: no texts")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # The role names occur once per chat-formatted example: weigh them like that so they become single tokens.
    roles = ["system", "user", "assistant"] * len(texts)
    tok.train_from_iterator(texts + roles, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD,
                                   extra_special_tokens=list(VISION_TOKENS), chat_template=CHAT_TEMPLATE,
                                   model_max_length=2048, padding_side="right")


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies into (temporal, height, width) as 2:3:3."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def tiny_config(preset: str, *, tokenizer: PreTrainedTokenizerFast, vision: bool = False):
    """The Hugging Face config of a tiny preset (tied embeddings), with vocab_size = len(tokenizer) and the
    special-token ids of the tokenizer."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    vocab = tokenizer.get_vocab()
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"the tokenizer lacks Qwen's special tokens {missing}; train one with train_tokenizer")
    ids = {t: vocab[t] for t in SPECIAL_TOKENS}
    text = dict(vocab_size=len(tokenizer), hidden_size=p["hidden"], intermediate_size=p["ffn"],
                num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_key_value_heads=p["kv_heads"],
                max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=True,
                bos_token_id=None, eos_token_id=ids[EOS], pad_token_id=ids[PAD])
    if not vision:
        return Qwen2Config(**text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    head_dim = p["hidden"] // p["heads"]
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(head_dim)}
    vis = dict(depth=2, hidden_size=p["vision_hidden"], intermediate_size=2 * p["vision_hidden"],
               num_heads=p["vision_heads"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
               window_size=112, fullatt_block_indexes=[1], out_hidden_size=p["hidden"], tokens_per_second=2)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vis, tie_word_embeddings=True,
                            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])


@dataclass(frozen=True)
class BuiltModel:
    path: Path
    n_params: int
    vocab_size: int
    architecture: str


def build_tiny_model(out_dir, *, texts: Iterable[str] | None = None, tokenizer: PreTrainedTokenizerFast | None = None,
                     vision: bool = False, preset: str = "small", seed: int = 0,
                     vocab_size: int = 2048) -> BuiltModel:
    """Write a randomly initialised tiny model as a new Hugging Face directory: config.json, model.safetensors,
    tokenizer (tokenizer.json + chat template), generation_config.json and, for `vision`, preprocessor_config.json.
    Give `texts` (a tokenizer is trained on them) or a ready `tokenizer`. Weights depend only on (config, seed)."""
    if (texts is None) == (tokenizer is None):
        raise ValueError("build_tiny_model: give exactly one of texts= or tokenizer=")
    check_new(out_dir)  # before the work; `new_folder` checks again under the lock
    tok = train_tokenizer(texts, vocab_size=vocab_size) if tokenizer is None else tokenizer
    config = tiny_config(preset, tokenizer=tok, vision=vision)
    cls = Qwen2_5_VLForConditionalGeneration if vision else Qwen2ForCausalLM
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        model = cls(config).float().eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids(EOS), tok.convert_tokens_to_ids(PAD)],
        pad_token_id=tok.pad_token_id, bos_token_id=None, do_sample=False)
    out = Path(out_dir)
    with new_folder(out) as tmp:  # locked, refused when it exists and is not empty, renamed into place whole
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if vision:
            save_image_processor(tmp, min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS,
                                 merge_size=config.vision_config.spatial_merge_size,
                                 patch_size=config.vision_config.patch_size,
                                 temporal_patch_size=config.vision_config.temporal_patch_size)
    return BuiltModel(path=out, n_params=sum(p.numel() for p in model.parameters()), vocab_size=len(tok),
                      architecture=cls.__name__)
