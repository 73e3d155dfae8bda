"""A self-contained HTML report of one or more evaluations: tables as HTML, plots as inline base64 PNGs.

One file, no external resources (no scripts, fonts or stylesheets fetched), so it can be mailed or archived. The
tables are rebuilt from the saved rows with `views.all_views`, so a report over several result files (e.g. one
per method) compares them in the same tables. Plots (matplotlib, Agg backend, no pyplot state):
- language heatmap: model × probe language of the main metric (fake-rate when there are misinformation probes,
  else correctness) — does the fake spread, and does unlearning reach every language?;
- method comparison: per model, the mean of each metric per split (forget should drop, retain should stay);
- bounce-back: per relearning attack, the metric after unlearning and after relearning.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from obliviate.eval import views
from obliviate.eval.results import EvalResult, load_results
from obliviate.eval.rows import EvalMeta, ProbeRow, row_field
from obliviate.files import write_text

MAX_ROWS = 400  # generations listed at the end of the report
MC_STYLE_NAMES = {"offside": "OFFSIDE's prompt and parser", "lenient": "lenient prompt and parser"}
TITLE = "obliviate evaluation"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}td.na{color:#aaa}.small{font-size:.85em;color:#555}
img{max-width:100%;display:block;margin:.5em 0}details{margin:1em 0}
"""


def merge_results(results: Sequence[EvalResult]) -> tuple[list[ProbeRow], EvalMeta]:
    """Rows and metadata of several evaluations as one (the metadata the views read, and the models joined). A
    model name used by two runs is prefixed with its run folder's name ("npo/base") so neither hides the other."""
    counts: dict[str, int] = {}
    for r in results:
        for name in r.meta.models:
            counts[name] = counts.get(name, 0) + 1
    rows, models, pairs = [], {}, {}
    fakes, mias, refs, styles = set(), [], [], set()
    for r in results:
        tag = r.path.parent.name if r.path is not None else "run"

        def rename(name, tag=tag):
            return f"{tag}/{name}" if counts.get(name, 0) > 1 else name

        rows += [replace(row, model=rename(row.model)) for row in r.rows]
        models.update({rename(n): info for n, info in r.meta.models.items()})
        pairs.update({rename(a): rename(b) for a, b in r.meta.relearn_pairs.items()})
        fakes.add(r.meta.fake_language)
        if any(row.mc_generation is not None for row in r.rows):
            styles.add(r.meta.mc_style or "lenient")  # results written before mc_style was recorded: lenient
        if r.meta.mia:
            mias.append(r.meta.mia)
        if r.meta.reference:
            refs.append(rename(r.meta.reference))
    meta = EvalMeta(model=", ".join(sorted({str(r.meta.model) for r in results})), models=models,
                    relearn_pairs=pairs, fake_language=fakes.pop() if len(fakes) == 1 else None,
                    mia=mias[0] if mias else None, reference=refs[0] if len(refs) == 1 else None,
                    mc_style=" + ".join(sorted(styles)) or None)
    return rows, meta


# -- plots --------------------------------------------------------------------------------------------------------

def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def heatmap_png(table: views.Table) -> str:
    """A model × column heatmap of a Table (values in [0, 1] shown on a fixed scale), as base64 PNG."""
    import numpy as np
    from matplotlib.figure import Figure

    data = np.array([[np.nan if v is None else v for v in row] for row in table.values], dtype=float)
    fig = Figure(figsize=(1.2 + 0.7 * len(table.cols), 1.0 + 0.45 * len(table.rows)))
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(table.cols)), table.cols)
    ax.set_yticks(range(len(table.rows)), table.rows)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if not np.isnan(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if data[i, j] > 0.6 else "white")
    ax.set_title(table.title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


def bars_png(table: views.Table, *, title: str | None = None) -> str:
    """Grouped bars: one group per table row, one bar per column, as base64 PNG."""
    import numpy as np
    from matplotlib.figure import Figure

    n_rows, n_cols = len(table.rows), len(table.cols)
    fig = Figure(figsize=(max(4.0, 1.0 + 0.9 * n_rows * max(1, n_cols) / 2), 3.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, n_cols)
    x = np.arange(n_rows)
    for j, col in enumerate(table.cols):
        vals = [table.values[i][j] if table.values[i][j] is not None else 0.0 for i in range(n_rows)]
        ax.bar(x + (j - (n_cols - 1) / 2) * width, vals, width, label=col)
    ax.set_xticks(x, table.rows, rotation=20, ha="right")
    ax.axhline(0, color="black", linewidth=0.6)
    known = [v for row in table.values for v in row if v is not None]
    if known and min(known) >= 0 and max(known) <= 1:  # a rate: keep the scale fixed across reports
        ax.set_ylim(0, 1.05)
    ax.set_title(title or table.title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


# -- HTML --------------------------------------------------------------------------------------------------------

def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def table_html(table: views.Table) -> str:
    """A Table as an HTML <table> (hover a cell for its row count)."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in table.cols)
    body = []
    for i, r in enumerate(table.rows):
        cells = "".join(f'<td{" class=na" if v is None else ""} title="n={n}">{_fmt(v)}</td>'
                        for v, n in zip(table.values[i], table.counts[i]))
        body.append(f'<tr><th class="l">{e(r)}</th>{cells}</tr>')
    return (f"<h3>{e(table.title)}</h3><table class=view data-metric=\"{e(table.metric)}\">"
            f"<thead><tr><th class=\"l\">{e(table.row_name)} \\ {e(table.col_name)}</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _plots(rows: list[ProbeRow], meta: EvalMeta) -> list[str]:
    out = []
    key = views.main_metric(rows)
    value = row_field(key)
    splits = list(dict.fromkeys(r.split for r in rows if value(r) is not None))
    split = "forget" if "forget" in splits else (splits[0] if splits else None)
    lang = views.language_table(rows, key, split=split)
    if lang.rows:
        out.append(_img(heatmap_png(lang), f"heatmap: {lang.title}"))
    groups = views.group_table(rows, key, fake_language=meta.fake_language, split=split,
                               unlearn_languages=meta.unlearn_languages())
    if meta.fake_language and groups.rows:
        out.append(_img(heatmap_png(groups), f"heatmap: {groups.title}"))
    for m in views.present_metrics(rows, list(dict.fromkeys(views.split_metrics(rows) + ["says_fake"]))):
        t = views.split_table(rows, m)
        if t.rows:
            out.append(_img(bars_png(t, title=f"method comparison: {m} by split"), f"bars: {m} by split"))
    if meta.relearn_pairs:
        bb = views.bounce_back(rows, key, meta.relearn_pairs, split="forget" if "forget" in splits else None)
        if bb.rows:
            out.append(_img(bars_png(bb, title=f"bounce-back of {key}"), f"bars: {bb.title}"))
    return out


def _models_html(meta: EvalMeta) -> str:
    e = html.escape
    lines = []
    for name, info in meta.models.items():
        bits = [f"job={info.get('job')}" if info.get("job") else "",
                f"method={info.get('method')}" if info.get("method") else "",
                f"unlearned in {'+'.join(info['unlearn_languages'])}" if info.get("unlearn_languages") else "",
                f"{len(info.get('stack') or [])} adapter(s) deep" if info.get("stack") else "base model"]
        lines.append(f"<li><b>{e(name)}</b> <span class=small>{e(', '.join(b for b in bits if b))}</span></li>")
    return f"<ul>{''.join(lines)}</ul>"


def _rows_html(rows: list[ProbeRow]) -> str:
    e = html.escape
    cols = ("model", "split", "id", "language", "modality", "question", "generation", "correct", "rougeL_recall",
            "says_fake", "mc_choice", "prob")
    getters = [row_field(c) for c in cols]
    head = "".join(f'<th class="l">{c}</th>' for c in cols)
    body = "".join("<tr>" + "".join(f'<td class="l">{e(_fmt(get(r)))}</td>' for get in getters) + "</tr>"
                   for r in rows[:MAX_ROWS])
    more = f" (first {MAX_ROWS} of {len(rows)})" if len(rows) > MAX_ROWS else ""
    return (f"<details><summary>Generations{more}</summary><table class=rows><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></details>")


def render_report(results: EvalResult | Sequence[EvalResult], *, title: str = TITLE) -> str:
    """The HTML text of the report over one or more evaluations."""
    results = [results] if isinstance(results, EvalResult) else list(results)
    if not results:
        raise ValueError("render_report: no results")
    rows, meta = merge_results(results)
    e = html.escape
    sources = ", ".join(str(r.path) for r in results if r.path is not None)
    mc = MC_STYLE_NAMES.get(meta.mc_style, meta.mc_style or "none")
    parts = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{e(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>",
             f"<p class=small>model: {e(meta.model)}; {len(rows)} rows; fake-data language: "
             f"{e(meta.fake_language or 'unknown')}; multiple choice: {e(mc)}; sources: {e(sources or '-')}</p>",
             "<h2>Models</h2>", _models_html(meta), "<h2>Plots</h2>", *_plots(rows, meta), "<h2>Tables</h2>",
             *(table_html(t) for t in views.all_views(rows, meta)), "<h2>Generations</h2>", _rows_html(rows),
             "</body></html>"]
    return "\n".join(parts)


def write_report(runs: Sequence[str | Path | EvalResult], out: str | Path, *, title: str = TITLE) -> Path:
    """Render the report of `runs` (run folders, results.json paths or EvalResults) into `out`, atomically."""
    results = [r if isinstance(r, EvalResult) else load_results(r) for r in runs]
    text = render_report(results, title=title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_text(out, text)
