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
from obliviate.eval.views import markdown
from obliviate.eval.rows import ProbeRow
from obliviate.eval.spread import Spread


def percent(v) -> str:
    """A rate as a percentage: a number "  7.5", a Spread over seeds " 7.5 ± 2.1", none "  –  "."""
    if isinstance(v, Spread):
        return f"{v.format(scale=100):>5}"
    return "  –  " if v is None else f"{100 * v:5.1f}"


# Each table is two steps: its numbers from the rows (one run), then its markdown from numbers — one run's, or
# several seeds' combined by `eval.spread.combine` (every number a Spread), which `percent` prints as mean ± sd.

def misinformation_numbers(rows: Sequence[ProbeRow], models: Sequence[str], *, fake_language: str) -> dict:
    """{model: {group: (fake_rate, truth_rate, n)}} over the misinformation probes, by language group."""
    fake_rows = [r for r in rows if r.says_fake is not None]
    group = lambda r: views.language_group(r.language, fake_language)  # noqa: E731
    fake = views.mean_table(fake_rows, "says_fake", col_key=group)
    truth = views.mean_table(fake_rows, "says_truth", col_key=group)
    numbers = {}
    for model in models:
        if model in fake.rows:
            numbers[model] = {g: (fake.cell(model, g), truth.cell(model, g),
                                  fake.counts[fake.rows.index(model)][fake.cols.index(g)])
                              for g in views.GROUPS if g in fake.cols}
    return numbers


def misinformation_markdown(numbers: dict, runs: dict[str, tuple[str, str]], *, fake_language: str) -> str:
    body = []
    for model, cells in numbers.items():
        method, label = runs.get(model, (model, "–"))
        body.append([method, label] + [f"{percent(cells[g][0])} / {percent(cells[g][1])}" if g in cells else "–"
                                       for g in views.GROUPS])
    header = ["method", "unlearned in", "en", f"L ({fake_language})", "high-resource", "low-resource"]
    title = f"Misinformation (fake injected in {fake_language}): fake-rate / truth-rate, % of greedy answers"
    return markdown(title, header, body)


def misinformation_table(rows: Sequence[ProbeRow], runs: dict[str, tuple[str, str]], *, fake_language: str,
                         baselines: Sequence[str] = ()) -> tuple[str, dict]:
    """Fake-rate / truth-rate by language group. `runs`: model name -> (method, unlearning set label).

    Returns the markdown and the numbers {model: {group: (fake_rate, truth_rate, n)}}.
    """
    numbers = misinformation_numbers(rows, [*baselines, *runs], fake_language=fake_language)
    return misinformation_markdown(numbers, runs, fake_language=fake_language), numbers


def retain_numbers(rows: Sequence[ProbeRow], models: Sequence[str]) -> dict:
    """{model: accuracy} on the players nobody faked (what unlearning costs)."""
    t = views.mean_table([r for r in rows if r.split == "retain"], "correct", col_key=lambda r: "all")
    return {m: t.cell(m, "all") for m in models if m in t.rows}


def retain_line(numbers: dict) -> str:
    parts = [f"{m} {percent(v).strip()}%" for m, v in numbers.items()]
    return "Retain accuracy (true facts of untouched players, all languages): " + ", ".join(parts)


OFFSIDE_COLUMNS = [("forget", "shared"), ("forget", "private"), ("retain", "shared"), ("retain", "private"),
                   ("test", "shared"), ("test", "private")]


def offside_numbers(rows: Sequence[ProbeRow], models: Sequence[str]) -> dict:
    """{"model|modality": {"split/kind": accuracy}} per split × shared/private × modality."""
    numbers = {}
    for modality in ("text", "image"):
        t = views.mean_table([r for r in rows if r.modality == modality], "correct",
                             col_key=lambda r: f"{r.split}/{r.kind}")
        for model in models:
            if model in t.rows:
                numbers[f"{model}|{modality}"] = {f"{s}/{k}": t.cell(model, f"{s}/{k}") if f"{s}/{k}" in t.cols
                                                  else None for s, k in OFFSIDE_COLUMNS}
    return numbers


def offside_markdown(numbers: dict, runs: dict[str, str]) -> str:
    body = []
    for key, cells in numbers.items():
        model, modality = key.split("|")
        body.append([runs.get(model, model), modality] + [percent(cells[f"{s}/{k}"]) for s, k in OFFSIDE_COLUMNS])
    header = ["method", "probe"] + [f"{s} {k}" for s, k in OFFSIDE_COLUMNS]
    return markdown("OFFSIDE settings: accuracy (%) of greedy answers (test = held-out picture variants and "
                    "held-out question wording)", header, body)


def bounce_numbers(rows: Sequence[ProbeRow], pairs: dict[str, str]) -> dict:
    """{"unlearned|modality": (forget accuracy after unlearning, after relearning, the change)}."""
    t = views.mean_table([r for r in rows if r.split == "forget"], "correct", col_key="modality")
    numbers = {}
    for relearned, unlearned in pairs.items():
        for modality in ("text", "image"):
            if modality in t.cols and relearned in t.rows and unlearned in t.rows:
                a, b = t.cell(unlearned, modality), t.cell(relearned, modality)
                numbers[f"{unlearned}|{modality}"] = (a, b, None if a is None or b is None else b - a)
    return numbers


def bounce_markdown(numbers: dict, labels: dict[str, str]) -> str:
    body = []
    for key, (a, b, delta) in numbers.items():
        unlearned, modality = key.split("|")
        if isinstance(delta, Spread):
            change = f"{delta.format(scale=100):>5}" if delta.mean < 0 else f"+{delta.format(scale=100)}"
        else:
            change = "  –  " if delta is None else f"{100 * delta:+5.1f}"
        body.append([labels.get(unlearned, unlearned), modality, percent(a), percent(b), change])
    header = ["unlearned with", "probe", "forget acc. after unlearning", "after relearning", "bounce-back"]
    return markdown("Relearning attack: forget-set accuracy (%) before and after", header, body)
