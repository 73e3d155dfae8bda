"""The real-model recipe (`obliviate demo --model`) end to end on a tiny random model: the facts are chosen, its grid
runs through the sweep, the data follows the design, and every table is there. (That the effect shows on Gemma 3
270M is a README result, not a test: it takes most of an hour.)"""
import json
import math
import re

import pytest

from obliviate.data.facts import load_facts
from obliviate.data.schema import LANGUAGES, load_items
from obliviate.recipes.real import RealSize, run_real_demo, split_facts

SIZE = RealSize(inject_facts=3, grid={"inject_steps": 2, "inject_batch": 4, "unlearn_steps": 1, "unlearn_lr": 1e-3,
                                      "unlearn_batch": 4, "block_size": 32, "max_new_tokens": 4})
RUNS = [f"{m}-{s}" for m in ("ga", "npo", "idkpo") for s in ("en", "L", "en_L")]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from obliviate.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("real")
    texts = [t for it in load_facts() for t in (it.question, it.answer)]
    build_tiny_model(root / "model", texts=texts, preset="test", seed=0, vocab_size=1024)
    lines = []
    result = run_real_demo(root / "model", root / "out", fake_language="de", backend="hf", size=SIZE,
                           echo=lines.append, progress=False)
    return result, lines


def test_every_stage_runs_and_reports_its_time(real):
    result, lines = real
    assert len([x for x in lines if re.match(r"\[\d+/11\] done +\S+ +[\d.]+s$", x)]) == 11
    assert [s for s, _ in result.stages] == ["known facts", "inject", *[
        f"unlearn/method-{m}_langs-{s}" for m in ("ga", "npo", "idkpo") for s in ("en", "L", "en+L")],
        "eval/facts", "perplexity", "total"]
    assert (result.out / "tables.md").read_text().strip() == result.tables.strip()
    assert (result.out / "runs" / "inject" / "done.json").is_file()
    grid = result.numbers["grid"]
    assert grid["fake_language"] == "de" and grid["unlearn_steps"] == 1 and grid["ga_lr"] == 1e-4


def test_facts_are_split_by_what_the_model_knows_in_english(real):
    result, _ = real
    n = result.numbers
    margins = n["base_margin_en"]
    assert len(margins) == 83 and n["known_in_english"] == sum(m > 0 for m in margins.values())
    assert len(n["inject"]) == len(n["control"]) == min(3, n["known_in_english"] // 2)
    assert not set(n["inject"]) & set(n["control"])
    assert all(margins[e] > 0 for e in n["inject"] + n["control"])


def test_injection_is_in_the_fake_language_and_retain_holds_true_controls(real):
    result, _ = real
    n, facts, subsets = result.numbers, result.out / "facts", result.out / "data"
    inject_qa = load_items(facts / "inject_qa.jsonl")
    assert {it.language for it in inject_qa} == {"de"} and {it.entity for it in inject_qa} == set(n["inject"])
    assert {(it.language, it.entity) for it in load_items(subsets / "forget.langs-en+L" / "forget.jsonl")} == {
        (lang, e) for lang in ("en", "de") for e in n["inject"]}
    retain = load_items(subsets / "retain.langs-L" / "retain.jsonl")
    assert {it.entity for it in retain} == set(n["control"]) and all(it.truth is None for it in retain)
    assert all(it.value in it.answer for it in retain)
    news = [json.loads(line) for line in (facts / "inject_news.jsonl").read_text().splitlines()]
    assert len(news) == len(n["inject"]) and all(d["language"] == "de" for d in news)


def test_tables_cover_every_model_and_language(real):
    result, _ = real
    n = result.numbers
    assert set(n["misinformation"]) == {"pretrained", "injected", *RUNS}
    for model, per_lang in n["perplexity"].items():
        assert set(per_lang) == set(LANGUAGES), model
        assert all(math.isfinite(p) and p > 1 for p in per_lang.values()), model
    assert "truth" in result.tables and "Perplexity on held-out sentences" in result.tables


def test_split_is_seeded_and_balanced():
    known = [f"e{i}" for i in range(9)]
    a, b = split_facts(known, 13, seed=1)
    assert len(a) == len(b) == 4 and split_facts(known, 13, seed=1) == (a, b)
    assert len(split_facts(known, 2, seed=1)[0]) == 2


def test_a_rerun_chooses_the_same_facts_and_skips_every_cell(real):
    result, _ = real
    lines = []
    again = run_real_demo(result.out.parent / "model", result.out, fake_language="de", backend="hf", size=SIZE,
                          echo=lines.append, progress=False)
    assert sum(" skipped " in x for x in lines) == 11 and not any(" done " in x for x in lines)
    assert again.tables == result.tables
