"""`obliviate demo`: both papers' experiments end to end on the embedded world (see obliviate/recipes/demo.py)."""
import time

import click

from obliviate.recipes.sizes import SIZES
from obliviate.data.schema import LANGUAGES


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: demo-out/SIZE-YYYYmmdd-HHMMSS).")
@click.option("--size", type=click.Choice(list(SIZES)), default="quick", show_default=True,
              help="tiny: a smoke run (numbers mean nothing); quick: ≤10 min on 2 CPU cores; full: longer, clearer.")
@click.option("--fake-language", type=click.Choice([c for c in LANGUAGES if c != "en"]), default="fr",
              show_default=True, help="The language the fakes are injected in (the paper's L).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default="auto", show_default=True,
              help="Generation backend for the text model (the vision-language model uses transformers on CPU).")
@click.option("--no-progress", is_flag=True, help="No progress bars (stage lines only).")
def demo(out, size, fake_language, seed, backend, no_progress):
    """Build the world, learn it, inject fakes, unlearn them in several languages and from a vision-language model,
    attack with relearning, probe everything, and print the papers' tables and an HTML report."""
    from obliviate.recipes.demo import run_demo

    out = out or f"demo-out/{size}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        run_demo(out, size=size, fake_language=fake_language, seed=seed,
                 backend=backend, echo=click.echo, progress=not no_progress)
    except (ValueError, FileExistsError) as err:
        raise click.ClickException(str(err)) from err
