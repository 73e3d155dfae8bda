"""The real-model demo's tables, from its evaluation rows (`ProbeRow`) and perplexities.

Beside the tiny demo's fake-rate / truth-rate of greedy answers, a real model needs three more things (lessons of
the first run on Gemma 3 270M, docs/LOG.md): the truth−fake margin in nats (it moves long before greedy answers
flip: with 13 facts per language one fact is 7.7 points), every language's own baseline (a base model that does
not know a fact in Urdu has a high "fake-rate" there from ignorance, not from the injection), and the probes whose
true value is spelled as in English ("Lisbon" in en/de/jv), where suppressing one word in one language suppresses
it in all.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import mean
from typing import Sequence

from obliviate.data.schema import LANGUAGES
from obliviate.eval import views
from obliviate.eval.rows import ProbeRow
from obliviate.files import write_text
from obliviate.recipes.demo import DemoResult
from obliviate.eval.views import markdown
from obliviate.recipes.demo_tables import percent, misinformation_table


def margin(r: ProbeRow) -> float | None:
    """log P(true value) − log P(fake value) in nats, under the row's model (None when not scored)."""
    if r.truth_value_logp is None or r.value_logp is None:
        return None
    return r.truth_value_logp - r.value_logp


def by_group(rows: Sequence[ProbeRow], model: str, fake_language: str, value) -> dict[str, float | None]:
    """Mean of value(row) over the model's rows, per language group (en / L / high / low)."""
    cells = {}
    for g in views.GROUPS:
        vals = [value(r) for r in rows if r.model == model and views.language_group(r.language, fake_language) == g]
        vals = [float(v) for v in vals if v is not None]
        cells[g] = mean(vals) if vals else None
    return cells


def margin_table(rows: Sequence[ProbeRow], models: Sequence[str], runs: dict, fake_language: str) -> str:
    """Fake preferred by log-prob (%) and the mean truth−fake margin (nats), with its change from pretrained."""
    base = by_group(rows, "pretrained", fake_language, margin)
    body = []
    for m in models:
        pref = by_group(rows, m, fake_language, lambda r: None if margin(r) is None else margin(r) < 0)
        marg = by_group(rows, m, fake_language, margin)
        method, label = runs.get(m, (m, "–"))
        body.append([method, label] + [
            f"{percent(pref[g])} / {marg[g]:+6.2f} ({marg[g] - base[g]:+6.2f})" if marg[g] is not None else "–"
            for g in views.GROUPS])
    header = ["method", "unlearned in", "en", f"L ({fake_language})", "high-resource", "low-resource"]
    return markdown("Injected facts, by log-prob: fake preferred (%) / mean truth−fake margin in nats (change from "
                    "pretrained)", header, body)


def baseline_table(rows: Sequence[ProbeRow], fake_language: str) -> str:
    """The pretrained model per language: how often it prefers the truth, and by how much."""
    mine = [r for r in rows if r.model == "pretrained"]
    body = []
    for lang in LANGUAGES:
        sub = [margin(r) for r in mine if r.language == lang and margin(r) is not None]
        greedy = [r.says_truth for r in mine if r.language == lang and r.says_truth is not None]
        if sub:
            body.append([lang + (" (L)" if lang == fake_language else ""), f"{100 * mean(m > 0 for m in sub):5.1f}",
                         f"{mean(sub):+6.2f}", percent(mean(greedy) if greedy else None), str(len(sub))])
    return markdown("Pretrained model, every probed fact: truth preferred by log-prob (%), mean margin (nats), "
                    "truth in the greedy answer (%)", ["language", "truth preferred", "margin", "greedy truth", "n"],
                    body)


def control_line(rows: Sequence[ProbeRow], models: Sequence[str]) -> str:
    parts = []
    for m in models:
        sub = [r for r in rows if r.model == m]
        acc = [margin(r) > 0 for r in sub if margin(r) is not None]
        greedy = [r.says_truth for r in sub if r.says_truth is not None]
        if acc:
            parts.append(f"{m} {100 * mean(acc):.0f}% / {100 * mean(greedy):.0f}%")
    return ("Control facts (never injected), truth preferred by log-prob / truth in greedy answers, all "
            "languages: " + ", ".join(parts))


def perplexity_line(ppl: dict[str, dict[str, float]]) -> str:
    """Geometric mean over the languages: an arithmetic one would be Javanese's and Hausa's alone (~800 vs ~40)."""
    parts = [f"{m} {math.exp(mean(math.log(x) for x in v.values())):.1f}" for m, v in ppl.items()]
    return "Perplexity on held-out sentences (geometric mean over the 9 languages): " + ", ".join(parts)


def write_outputs(out: Path, result, runs: dict, ppl: dict, info: dict, stages: list[tuple[str, float]], *,
                  seconds: float, echo) -> DemoResult:
    """Print and save (tables.md, demo.json) every table of the real-model demo."""
    L = info["fake_language"]
    injected = set(info["inject"])
    rows_inj = [r for r in result.rows if r.entity in injected]
    rows_ctl = [r for r in result.rows if r.entity not in injected]
    models = ["pretrained", "injected", *[n for n in runs if n != "injected"]]
    same = sum(r.truth == next((x.truth for x in rows_inj if x.entity == r.entity and x.language == "en"), None)
               for r in rows_inj if r.model == "pretrained" and r.language != "en")
    mis_md, mis_numbers = misinformation_table(rows_inj, runs, fake_language=L, baselines=["pretrained", "injected"])
    tables = "\n\n".join([
        f"Model {info['model']}: knows {info['known_in_english']} of {info['facts']} facts in English; "
        f"{len(injected)} injected in {L}, {len(info['control'])} controls; {same} of the injected facts' "
        f"{sum(1 for r in rows_inj if r.model == 'pretrained' and r.language != 'en')} non-English probes spell "
        "the true value as in English.",
        baseline_table(rows_inj + rows_ctl, L), mis_md, margin_table(rows_inj, models, runs, L),
        control_line(rows_ctl, models), perplexity_line(ppl)])
    stages = [*stages, ("total", round(seconds, 1))]
    write_text(out / "tables.md", tables + "\n")
    numbers = {"misinformation": mis_numbers, "perplexity": ppl, "stages": stages, **info}
    write_text(out / "demo.json", json.dumps(numbers, indent=1, default=str) + "\n")
    echo("\n" + tables + "\n")
    echo(f"tables: {out / 'tables.md'}   total {seconds:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=stages)
