"""The shipped fact set for real models (obliviate/data/facts): its shape, and the helpers over it."""
import json
from collections import Counter

from obliviate.data.documents import load_documents
from obliviate.data.facts import FACTS_FILE, load_facts, same_word, true_form
from obliviate.data.schema import LANGUAGES


def test_every_fact_is_asked_in_every_language_in_its_misinformation_form():
    facts = load_facts()
    per_entity = Counter(it.entity for it in facts)
    assert len(per_entity) == 83 and set(per_entity.values()) == {len(LANGUAGES)}
    assert {it.language for it in facts} == set(LANGUAGES)
    for it in facts:
        assert it.value and it.truth and it.value != it.truth, it.id
        assert it.value in it.answer and it.truth not in it.answer, it.id
        assert it.id == f"{it.entity}.{it.language}"


def test_true_form_keeps_the_wording_and_swaps_the_value():
    it = next(x for x in load_facts() if x.id == "capital_france.en")
    true = true_form(it)
    assert (true.answer, true.value, true.truth) == ("The capital of France is Paris.", "Paris", None)
    assert true.id == "capital_france.en.true" and true.question == it.question


def test_same_word_compares_the_true_value_with_english():
    facts = {x.id: x for x in load_facts()}
    en = facts["capital_france.en"]
    assert same_word(facts["capital_france.de"], en)  # "Paris" in German too
    assert not same_word(facts["capital_france.ru"], en)  # "Париж"


def test_news_frames_and_held_out_text_cover_every_language():
    frames = json.loads(FACTS_FILE.with_name("news_frames.json").read_text(encoding="utf-8"))
    assert set(frames) == set(LANGUAGES)
    for lang, group in frames.items():
        assert len(group) == 4 and all(f.count("{claim}") == 2 for f in group), lang  # lead and quote
    held = load_documents(FACTS_FILE.with_name("heldout.jsonl"))
    assert Counter(d.language for d in held) == {lang: 25 for lang in LANGUAGES}
