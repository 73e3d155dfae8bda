"""`obliviate eval` (probe a model and its adapters, write results.json + report.html) and `obliviate report`."""
from __future__ import annotations

from pathlib import Path

import click

from obliviate.eval.options import BACKENDS, MC_STYLES, EvalOptions


def _named(value: str, what: str) -> tuple[str, str]:
    """NAME=PATH -> (NAME, PATH); a bare PATH is named after its run folder (runs/npo_en/adapter -> npo_en)."""
    if "=" in value:
        name, path = value.split("=", 1)
        if not name or not path:
            raise click.BadParameter(f"{value!r}: expected NAME=PATH", param_hint=what)
    else:
        path = value
        p = Path(value.rstrip("/"))
        name = p.parent.name if p.name == "adapter" else (p.stem if what == "--probes" else p.name)
    if not Path(path).exists():
        raise click.BadParameter(f"{path}: no such file or folder", param_hint=what)
    return name, path


def _unique(pairs, what: str) -> dict[str, str]:
    out = {}
    for name, path in pairs:
        if name in out:
            raise click.BadParameter(f"two entries named {name!r} ({out[name]}, {path}); use NAME=PATH",
                                     param_hint=what)
        out[name] = path
    return out


@click.command("eval")
@click.option("--model", "model", required=True, type=click.Path(exists=True, file_okay=False),
              help="Base model: a local Hugging Face directory.")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=PATH",
              help="An adapter (or its run folder) to evaluate, repeatable. NAME defaults to the run folder's name.")
@click.option("--base-name", default=None, help="Also evaluate the base model, under this name (default: only "
              "when no --adapter is given, as 'base').")
@click.option("--probes", "probes", multiple=True, required=True, metavar="[SPLIT=]PATH",
              help="JSONL probe file, repeatable; its split is the file stem (forget.jsonl -> forget).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for results.json and "
              "report.html.")
@click.option("--backend", type=click.Choice(BACKENDS), default=EvalOptions.backend, show_default=True,
              help="auto = vLLM on CUDA when it imports; on the CPU transformers (hf), the faster as "
                   "measured.")
@click.option("--max-new-tokens", type=int, default=EvalOptions.max_new_tokens,
              help="Generation length limit for every probe (default: per probe, twice its answer's tokens rounded "
                   "up to a multiple of 32, 32..256; multiple-choice prompts 32).")
@click.option("--limit", type=int, default=None, help="Only the first N probes of each file.")
@click.option("--batch-size", type=int, default=EvalOptions.batch_size, show_default=True,
              help="transformers batch size (generation and scoring).")
@click.option("--device", default=None, help="cuda or cpu for transformers (default: cuda when available).")
@click.option("--fake-language", default=None, help="The fake-data language L (default: read from the runs).")
@click.option("--reference", default=None, help="Retain-only model (one of the names) for TOFU forget quality.")
@click.option("--mc-style", type=click.Choice(MC_STYLES), default=EvalOptions.mc_style, show_default=True,
              help="Multiple-choice prompt and parser: offside = OFFSIDE's own (comparable with its tables), "
                   "lenient = also reads '(C)', 'B. Arsenal', 'THE ANSWER IS D'.")
@click.option("--text-only", is_flag=True, default=EvalOptions.text_only,
              help="Drop probes with an image (OFFSIDE's unimodal setting; a text-only model then reads any file).")
@click.option("--no-mia", is_flag=True, help="Skip the membership-inference scores (and Min-K%++'s pass over the "
              "whole vocabulary, the slow part of scoring with a large one).")
@click.option("--no-score", is_flag=True, help="Generation metrics only (skip log-prob scoring).")
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it holds an earlier evaluation (results.json).")
def eval_cmd(model, adapters, base_name, probes, out, backend, max_new_tokens, limit, batch_size, device,
             fake_language, reference, mc_style, text_only, no_mia, no_score, no_report, overwrite):
    """Answer and score probe files with a base model and its adapters; write OUT/results.json (one row per probe
    and model, plus the aggregate views) and OUT/report.html."""
    from transformers.utils import logging as hf_logging

    from obliviate.eval.evaluate import Evaluator
    from obliviate.data.schema import DataError
    from obliviate.files import check_new

    hf_logging.disable_progress_bar()  # our bars (generate, score) instead of one per weight file loaded
    named_adapters = _unique((_named(a, "--adapter") for a in adapters), "--adapter")
    named_probes = _unique((_named(p, "--probes") for p in probes), "--probes")
    if limit is not None and limit < 1:
        raise click.BadParameter("must be >= 1", param_hint="--limit")
    try:
        check_new(out, replace=overwrite, marker="results.json", flag="--overwrite")  # before any work
        options = EvalOptions(backend=backend, device=device, max_new_tokens=max_new_tokens, batch_size=batch_size,
                              progress=True, fake_language=fake_language, reference=reference, mc_style=mc_style,
                              text_only=text_only, mia=not no_mia)
        ev = Evaluator(model, adapters=named_adapters, base_name=base_name, options=options)
        result = ev.run(named_probes, out=out, overwrite=overwrite, report=not no_report, limit=limit,
                        score=not no_score)
        ev.close()
    except (DataError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    mc = f", multiple choice: {mc_style}" if any(r.mc_generation is not None for r in result.rows) else ""
    click.echo(f"wrote {result.path}: {len(result.rows)} rows ({len(result.meta.models)} models × "
               f"{sum(result.meta.n_probes.values())} probes, backend {result.meta.backend}{mc}, "
               f"{result.meta.seconds:.1f}s)")
    _echo_summary(result)
    if not no_report:
        click.echo(f"wrote {Path(out) / 'report.html'}")


def _echo_summary(result) -> None:
    """Correctness (items with a fact `value`), ROUGE-L recall (free answers, as TOFU's), the fake-rate and
    multiple-choice accuracy by split, those that apply, as plain-text tables."""
    free = ["rougeL_recall"] if any(r.correct is None for r in result.rows) else []
    for metric in ["correct", *free, "says_fake", "mc_correct"]:
        try:
            t = result.table(f"{metric} by split")
        except KeyError:
            continue
        width = max(len(r) for r in t.rows) + 2
        click.echo(f"\n{t.title}\n" + "model".ljust(width) + "".join(c.rjust(10) for c in t.cols))
        for r, vals in zip(t.rows, t.values):
            click.echo(r.ljust(width) + "".join(("-" if v is None else f"{v:.3f}").rjust(10) for v in vals))


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="HTML file to write (default: report.html in the first run folder); for a sweep folder, a "
                   "markdown file for the pivot table (default: print it only).")
@click.option("--title", default=None, help="Report title (default: obliviate evaluation).")
@click.option("--rows", "row_by", default=None, help="Sweep folder: the column to pivot into rows (an axis, or "
              "split, language, group, modality, kind, model, stage; default: the first axis).")
@click.option("--cols", "col_by", default=None, help="Sweep folder: the column to pivot into columns (default: "
              "group when there is misinformation, else split).")
@click.option("--metric", default=None, help="Sweep folder: the metric (default: says_fake when there is "
              "misinformation, else correct).")
@click.option("--where", "where", multiple=True, metavar="COLUMN=VALUE", help="Sweep folder: keep only these "
              "rows, repeatable (e.g. split=forget).")
def report(runs, out, title, row_by, col_by, metric, where):
    """Write one self-contained HTML report (tables and plots) over one or more evaluation folders; for a sweep
    folder, print a table of one metric pivoted on two columns, mean ± sd over seeds."""
    from obliviate.eval.report import TITLE, write_report

    first = Path(runs[0])
    if (first / "sweep.json").is_file():
        _sweep_report(runs, out, row_by, col_by, metric, where)
        return
    if row_by or col_by or metric or where:
        raise click.UsageError(f"{first}: --rows, --cols, --metric and --where apply to a sweep folder (sweep.json)")
    out = out or ((first if first.is_dir() else first.parent) / "report.html")
    try:
        path = write_report(list(runs), out, title=title or TITLE)
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {path}")


def _sweep_report(runs, out, row_by, col_by, metric, where) -> None:
    from obliviate.files import write_text
    from obliviate.sweep.results import load_table, pivot

    if len(runs) > 1:
        raise click.UsageError("give one sweep folder")
    pairs = {}
    for w in where:
        if "=" not in w:
            raise click.BadParameter(f"{w!r}: expected COLUMN=VALUE", param_hint="--where")
        key, value = w.split("=", 1)
        pairs[key] = value
    try:
        rows, axes = load_table(runs[0])
        misinfo = any("says_fake" in r.means for r in rows)
        table = pivot(rows, row_by=row_by or (axes[0] if axes else "model"),
                      col_by=col_by or ("group" if misinfo else "split"),
                      metric=metric or ("says_fake" if misinfo else "correct"), where=pairs)
    except (ValueError, FileNotFoundError, AttributeError) as err:
        raise click.ClickException(str(err)) from err
    text = table.to_markdown()
    click.echo(text)
    if out:
        click.echo(f"wrote {write_text(out, text + chr(10))}")
