"""`obliviate data ...`: dataset files (JSONL items, see obliviate.data.schema)."""
from __future__ import annotations

import sys

import click

from obliviate.data import DataError, load_items


@click.group("data")
def data():
    """Dataset files: one question-answer item per JSONL line (see `obliviate.data.schema`)."""


@data.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(files):
    """Check FILE... with the loader: print `FILE: N items ok` or the first problem as FILE:LINE: PROBLEM.

    Exits 1 if any file failed (every file is still checked)."""
    failed = 0
    for f in files:
        try:
            items = load_items(f)
        except DataError as e:
            click.echo(str(e), err=True)
            failed += 1
            continue
        click.echo(f"{f}: {len(items)} items ok")
    if failed:
        sys.exit(1)
