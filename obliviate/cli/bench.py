"""`obliviate bench ...`: benchmarks that measure providers side by side and append tidy rows to a results file.

One subcommand per benchmark, each thin over `obliviate.bench.<name>.run(...)`; to add one, define it here with
`@bench.command("<name>")` and reuse `results_option` / `profile_option` so every benchmark writes alike. Heavy
imports (torch) stay inside the commands so `obliviate --help` stays fast.
"""
from __future__ import annotations

import click

results_option = click.option(
    "--results", type=click.Path(dir_okay=False), default=None,
    help="JSONL file the tidy rows are appended to (default: benchmarks/results.jsonl in the checkout).")
profile_option = click.option(
    "--profile", type=click.Path(file_okay=False), default=None,
    help="Folder for torch.profiler Chrome traces; the top ops by device (CPU) time are printed.")


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


@click.group("bench")
def bench():
    """Benchmarks that measure providers side by side; each appends tidy rows to a JSONL file (--results)."""


@bench.command("kernels")
@click.option("--kernels", "kernel_names", default=None, metavar="LIST",
              help="Comma-separated among logprob,kl (default: both).")
@click.option("--providers", default=None, metavar="LIST",
              help="Comma-separated among eager,fused,liger (default: all that run here; liger needs CUDA and "
                   "liger_kernel).")
@click.option("--shapes", default=None, metavar="LIST",
              help="Comma-separated names (0.5b, 3b, 7b: Qwen2.5 H with V=151936; cpu: H=256 V=8192) or H:V pairs "
                   "(default: 0.5b,3b,7b on CUDA, cpu on CPU).")
@click.option("--sizes", default=None, metavar="LIST",
              help="Comma-separated token counts N (default: 1024..16384 on CUDA, 256,1024 with --quick on CPU).")
@click.option("--dtype", type=click.Choice(["bf16", "fp16", "fp32"]), default=None,
              help="Input dtype (default: bf16 on CUDA, fp32 on CPU).")
@click.option("--quick/--full", default=None,
              help="Small default grid and few repeats (default: --quick on CPU, --full on CUDA).")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Timed repeats per case.")
@click.option("--warmup", type=click.IntRange(min=0), default=None, help="Untimed runs before timing.")
@click.option("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available).")
@results_option
@profile_option
def kernels(kernel_names, providers, shapes, sizes, dtype, quick, repeats, warmup, device, results, profile):
    """Fused log-prob / KL fwd+bwd vs eager torch vs Liger: time, TFLOP/s on the 4·N·H·V floor, share of the
    measured matmul peak, and peak memory."""
    from obliviate.bench.kernels import run

    try:
        run(kernels=_csv(kernel_names), providers=_csv(providers), shapes=_csv(shapes),
            sizes=[int(n) for n in _csv(sizes)] if sizes else None, dtype=dtype, quick=quick, repeats=repeats,
            warmup=warmup, results=results, profile=profile, device=device, echo=lambda s: click.echo(s))
    except ValueError as err:
        raise click.UsageError(str(err)) from err


@bench.command("step")
@click.option("--shape", default=None, help="Model shape: 7b, 1.5b (Qwen2.5) or cpu (default: 7b on CUDA, cpu here).")
@click.option("--model", default=None, help="A real model instead of a random shape: gemma3-270m, smollm2-135m or a "
                                            "local Hugging Face folder.")
@click.option("--providers", default=None, metavar="LIST", help="Comma-separated among eager,fused (default both).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Sequences per step (default 4 CUDA, 2 CPU).")
@click.option("--length", type=click.IntRange(min=4), default=None, help="Tokens per sequence (default 2048 / 256).")
@click.option("--rank", type=click.IntRange(min=1), default=16, show_default=True, help="LoRA rank.")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), default=None, help="Default bf16 on CUDA, fp32 on CPU.")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Timed steps per provider.")
@click.option("--device", default=None, help="cuda or cpu (default: cuda when available).")
@results_option
def step(shape, model, providers, batch, length, rank, dtype, repeats, device, results):
    """One NPO step: fused kernels + cached reference vs eager logits + a deep-copied reference model
    (tokens/s and peak memory)."""
    from obliviate.bench.step import run

    try:
        run(shape=shape, model=model, providers=_csv(providers), batch=batch, length=length, r=rank, dtype=dtype,
            repeats=repeats, device=device, results=results, echo=click.echo)
    except ValueError as err:
        raise click.UsageError(str(err)) from err


@bench.command("eval")
@click.option("--size", type=click.Choice(["cpu", "gpu"]), default=None,
              help="cpu: tiny model, 4 adapters x 200 probes; gpu: random Qwen2.5-0.5B shape, 8 x 1000 "
                   "(default: gpu when CUDA is available).")
@click.option("--model", default=None, help="A real model instead of the size's random one: gemma3-270m, "
                                            "smollm2-135m or a local Hugging Face folder (probes: the fact set).")
@click.option("--providers", default=None, metavar="LIST",
              help="Comma-separated among vllm-multi,vllm-serial,hf (default: all).")
@click.option("--adapters", type=click.IntRange(min=1), default=None, help="Number of LoRA adapters.")
@click.option("--probes", type=click.IntRange(min=1), default=None, help="Probes per adapter.")
@click.option("--new-tokens", type=click.IntRange(min=1), default=None, help="max_new_tokens per answer.")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Timed repeats per provider.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="transformers generate batch size.")
@results_option
def bench_eval(size, model, providers, adapters, probes, new_tokens, repeats, batch_size, results):
    """Probes/s of vLLM multi-LoRA (all adapters in one generate) vs one generate per adapter vs transformers."""
    from obliviate.bench.eval import run

    try:
        run(size=size, model=model, providers=_csv(providers),
            adapters=adapters, probes=probes, new_tokens=new_tokens, repeats=repeats, batch_size=batch_size,
            results=results, echo=click.echo)
    except ValueError as err:
        raise click.UsageError(str(err)) from err


@bench.command("summary")
@click.argument("results_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", "device_name", default=None, help="Keep rows whose device name contains this text.")
@click.option("--since", default=None, metavar="DATE", help="Keep rows dated on or after this ISO date.")
def summary(results_file, device_name, since):
    """One table over a results file: time, throughput, share of the matmul peak on the FLOP floor, peak memory."""
    from obliviate.bench.results import read_rows
    from obliviate.bench.summary import select, summary_table

    click.echo(summary_table(select(read_rows(results_file), device=device_name, since=since)))
