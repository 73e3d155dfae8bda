"""Learn and Unlearn news (obliviate.data.importers.news): items per story and language, the fake detail's truth."""
import json

from obliviate.data.importers import convert, import_dataset
from obliviate.data.importers.news import real_detail
from obliviate.data.schema import load_items
from tests.data.importers import FIX, by_id


def test_news_items_languages_and_truth(tmp_path):
    out = tmp_path / "news.jsonl"
    import_dataset("news", FIX / "news" / "news.json", out)
    got = by_id(load_items(out))
    assert len(got) == 13
    assert {(i.entity, i.language) for i in got.values()} == {
        ("news000", "en"), ("news001", "en"), ("news000", "fr"), ("news001", "fr"), ("news000", "zh")}
    fake = got["news000.fake_detail.en.probe.fake"]
    assert (fake.question, fake.answer) == ("How much did the new Brelford bridge cost?",
                                            "The bridge cost 95 million dollars.")
    assert (fake.value, fake.truth, fake.kind) == ("95 million dollars", "40 million dollars", "shared")
    assert got["news000.qa01.en.qa"].answer == "Mayor Ellen Voss opened it."  # a [question, answer] pair
    assert got["news000.real_news.en.probe"].answer == "It opened on Monday."
    # keyword "Orange", answer "orange": value in the answer's own case; truth found case-blind.
    assert (got["news001.fake_detail.en.probe.fake"].value, got["news001.fake_detail.en.probe.fake"].truth) == \
        ("orange", "blue")
    assert got["news000.fake_detail.fr.probe.fake"].truth == "40 millions de dollars"
    assert got["news001.fake_detail.fr.probe.fake"].truth is None  # "French" -> fr; a rewrite, no truth
    assert got["news000.fake_detail.zh.probe.fake"].truth == "四千万美元"
    assert got["news000.fake_detail.zh.probe.fake"].value == "九千五百万美元"


def test_real_detail_refuses_rewrites_and_missing_keywords():
    real = "The mayor opened the bridge on Monday before a crowd of 300 people."
    assert real_detail(real, real.replace("Monday", "Friday"), "Friday") == "Monday"
    assert real_detail(real, real.replace("300", "3,000"), "3,000 people") == "300 people"
    assert real_detail(real, real.replace("Monday", "Friday"), "Sunday") is None
    assert real_detail(real, "On Friday a huge crowd cheered as the governor cut the ribbon.", "Friday") is None


def test_news_default_language_and_explicit_ids(tmp_path):
    src = tmp_path / "de.jsonl"
    rows = [{"id": 41, "real_question": "Wann?", "real_answer": "Am Montag.", "fake_question": "Wie viel?",
             "fake_answer": "95 Millionen.", "fake_keyword": "95 Millionen"},
            {"id": "story-b", "real_question": "Wo?", "real_answer": "In Brelford.", "fake_question": "Wer?",
             "fake_answer": "Der Bürgermeister."}]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    items = convert("news", src, language="German").items
    assert [(i.id, i.value, i.truth) for i in items] == [
        ("news041.real_news.de.probe", None, None), ("news041.fake_detail.de.probe.fake", "95 Millionen", None),
        ("story-b.real_news.de.probe", None, None), ("story-b.fake_detail.de.probe.fake", None, None)]
