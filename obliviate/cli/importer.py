"""`obliviate import FORMAT SRC OUT`: convert a public unlearning dataset to obliviate JSONL
(thin over `obliviate.data.importers.import_dataset`)."""
from __future__ import annotations

import click

from obliviate.data.importers import FORMATS, import_dataset, options_of
from obliviate.data import DataError


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(list(FORMATS)))
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--image-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="offside, offside-mc: folder the records' image paths are relative to (default: SRC's folder).")
@click.option("--players-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="offside, offside-mc: another OFFSIDE file whose name questions tell which player an image "
                   "or a text-only question is about.")
@click.option("--kind", type=click.Choice(["private", "shared"]), default=None,
              help="tofu: kind of the records, private (fictitious authors) or shared (real-world facts); default "
                   "from a TOFU file name (forgetNN, retainNN, full: private; real_authors, world_facts: shared).")
@click.option("--first-author", type=int, default=None,
              help="tofu: index of the author of the first record, for records without task_id / name (default "
                   "from a TOFU file name: forgetNN -> 200-2*NN, retainNN and full -> 0).")
@click.option("--language", default=None,
              help="news: language of records without a 'language' field (ISO 639-1 code or name; default en).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: on a terminal, for files of 1000 records or more).")
@click.option("--force", is_flag=True, help="Replace OUT and images already there with other content.")
def import_cmd(fmt, src, out, progress, force, **options):
    """Convert SRC, a FORMAT dataset file (JSON array or JSON Lines), to the JSONL item file OUT.

    \b
    FORMAT:
      offside     OFFSIDE generation sets (chat messages + images)
      offside-mc  OFFSIDE multiple-choice sets (Question, Options, Correct_Answer, images)
      tofu        TOFU question/answer files (paraphrased / perturbed answers)
      news        Learn and Unlearn news-truthful (real/fake news, fake_keyword, sft_qas, probes)

    Images are copied to OUT's folder under images/, only pictures from inside the source's image folder. OUT is
    written atomically, only if every record converts; files already there with other content need --force.
    """
    given = {k: v for k, v in options.items() if v is not None}
    wrong = sorted(set(given) - set(options_of(fmt)))
    if wrong:
        raise click.UsageError(f"--{wrong[0].replace('_', '-')} does not apply to format {fmt}")
    try:
        imported = import_dataset(fmt, src, out, progress=progress, force=force, **given)
    except (DataError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    entities = len({item.entity for item in imported.items})
    images = f", {len(imported.files)} images" if imported.files else ""
    click.echo(f"wrote {len(imported.items)} items ({entities} entities{images}) to {out}")
    for note in imported.notes:
        click.echo(f"  {note}")
