"""The demo's printed tables, in the shape of the two papers, built from evaluation rows (`eval.rows.ProbeRow`).

Learn and Unlearn (Lu & Koehn, 2406.13748), Table: rows = the unlearning language set (en / L / en+L) per method,
columns = probe-language group (en, L = the fake-data language, high-resource, low-resource), cells =
fake-rate / truth-rate of greedy answers to the misinformation probes.

OFFSIDE (2510.22535): rows = method, columns = forget / retain / test accuracy (held-out picture variants), for
shared and private attributes, and forget accuracy before and after the relearning attack (bounce-back).
"""
from __future__ import annotations

from typing import Sequence

from obliviate.eval import views
from obliviate.eval.rows import ProbeRow


def percent(v: float | None) -> str:
    return "  –  " if v is None else f"{100 * v:5.1f}"


def markdown(title: str, header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub-markdown table under a bold title (readable as plain text too)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [f"**{title}**", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)


def misinformation_table(rows: Sequence[ProbeRow], runs: dict[str, tuple[str, str]], *, fake_language: str,
                         baselines: Sequence[str] = ()) -> tuple[str, dict]:
    """Fake-rate / truth-rate by language group. `runs`: model name -> (method, unlearning set label).

    Returns the markdown and the numbers {model: {group: (fake_rate, truth_rate, n)}}.
    """
    fake_rows = [r for r in rows if r.says_fake is not None]
    group = lambda r: views.language_group(r.language, fake_language)  # noqa: E731
    fake = views.mean_table(fake_rows, "says_fake", col_key=group)
    truth = views.mean_table(fake_rows, "says_truth", col_key=group)
    numbers, body = {}, []
    for model in list(baselines) + list(runs):
        if model not in fake.rows:
            continue
        method, label = runs.get(model, (model, "–"))
        cells = {}
        for g in views.GROUPS:
            if g in fake.cols:
                cells[g] = (fake.cell(model, g), truth.cell(model, g), fake.counts[fake.rows.index(model)][
                    fake.cols.index(g)])
        numbers[model] = cells
        body.append([method, label] + [f"{percent(cells[g][0])} / {percent(cells[g][1])}" if g in cells else "–"
                                       for g in views.GROUPS])
    header = ["method", "unlearned in", "en", f"L ({fake_language})", "high-resource", "low-resource"]
    title = f"Misinformation (fake injected in {fake_language}): fake-rate / truth-rate, % of greedy answers"
    return markdown(title, header, body), numbers


def retain_line(rows: Sequence[ProbeRow], models: Sequence[str]) -> str:
    """Accuracy on the players nobody faked, per model (what unlearning costs)."""
    t = views.mean_table([r for r in rows if r.split == "retain"], "correct", col_key=lambda r: "all")
    parts = [f"{m} {percent(t.cell(m, 'all')).strip()}%" for m in models if m in t.rows]
    return "Retain accuracy (true facts of untouched players, all languages): " + ", ".join(parts)


def offside_table(rows: Sequence[ProbeRow], runs: dict[str, str], *, baselines: Sequence[str] = ()) -> tuple[str, dict]:
    """Accuracy per split × shared/private × modality. `runs`: model name -> row label."""
    cols = [("forget", "shared"), ("forget", "private"), ("retain", "shared"), ("retain", "private"),
            ("test", "shared"), ("test", "private")]
    key = lambda r: (r.split, r.kind)  # noqa: E731
    numbers, body = {}, []
    for modality in ("text", "image"):
        sub = [r for r in rows if r.modality == modality]
        t = views.mean_table(sub, "correct", col_key=lambda r: "/".join(key(r)))
        for model in list(baselines) + list(runs):
            if model not in t.rows:
                continue
            cells = {f"{s}/{k}": t.cell(model, f"{s}/{k}") if f"{s}/{k}" in t.cols else None for s, k in cols}
            numbers[(model, modality)] = cells
            body.append([runs.get(model, model), modality] + [percent(cells[f"{s}/{k}"]) for s, k in cols])
    header = ["method", "probe"] + [f"{s} {k}" for s, k in cols]
    return markdown("OFFSIDE settings: accuracy (%) of greedy answers (test = held-out picture variants and "
                    "held-out question wording)", header, body), numbers


def bounce_table(rows: Sequence[ProbeRow], pairs: dict[str, str], labels: dict[str, str]) -> tuple[str, dict]:
    """Forget accuracy after unlearning, after the relearning attack, and the bounce-back, per modality."""
    forget = [r for r in rows if r.split == "forget"]
    t = views.mean_table(forget, "correct", col_key="modality")
    body, numbers = [], {}
    for relearned, unlearned in pairs.items():
        for modality in ("text", "image"):
            if modality not in t.cols or relearned not in t.rows or unlearned not in t.rows:
                continue
            a, b = t.cell(unlearned, modality), t.cell(relearned, modality)
            numbers[(unlearned, modality)] = (a, b)
            delta = None if a is None or b is None else b - a
            body.append([labels.get(unlearned, unlearned), modality, percent(a), percent(b),
                         "  –  " if delta is None else f"{100 * delta:+5.1f}"])
    header = ["unlearned with", "probe", "forget acc. after unlearning", "after relearning", "bounce-back"]
    return markdown("Relearning attack: forget-set accuracy (%) before and after", header, body), numbers
