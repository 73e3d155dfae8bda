"""TOFU (obliviate.data.importers.tofu): labels from the records' own fields or, said aloud, from the file name and
record order; paraphrased and perturbed answers kept."""
import json
from dataclasses import astuple

import pytest

from obliviate.data.importers import convert, import_dataset
from obliviate.data.importers.tofu import tofu_file
from obliviate.data.schema import DataError, load_items
from tests.data.importers import FIX

FORGET01 = FIX / "tofu" / "forget01_perturbed.json"


def rows() -> list[dict]:
    return [json.loads(line) for line in FORGET01.read_text().splitlines()]


def write(path, records) -> str:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_tofu_authors_from_record_order(tmp_path):
    out = tmp_path / "forget01.jsonl"
    imported = import_dataset("tofu", FORGET01, out)  # forget01: authors 198, 199
    items = load_items(out)
    assert [i.entity for i in items] == ["tofu_author_198"] * 20 + ["tofu_author_199"] * 2
    first, last = items[0], items[-1]
    assert first.id == "tofu_author_198.q00.en.qa" and last.id == "tofu_author_199.q01.en.qa"
    assert (first.kind, first.language, first.value, first.attribute) == ("private", "en", None, "q00")
    assert first.paraphrases == ("Who is the writer born in Kisumu in 1971?",)
    assert first.answer_paraphrases == ("That author is called Maren Oduya.",)  # TOFU's truth-ratio base
    assert first.perturbed == ("The author born in Kisumu in 1971 is Selma Achieng.",
                               "The author born in Kisumu in 1971 is Peter Otieno.",
                               "The author born in Kisumu in 1971 is Rose Wanjiru.")
    assert last.answer == "Tavi Rennick was born in Tartu, Estonia."
    assert all(len(i.answer_paraphrases) == 1 for i in items)
    assert imported.notes == [
        "kind private (from the file name forget01; --kind to set)",
        "authors 198-199 by record position, 20 records each (first author 198 from the file name); the last has "
        "2 of its 20; 22 of the 40 records TOFU's forget01 has: check that record 1 is about author 198",
        "paraphrased answers (the truth ratio's base) on 22 of 22 records"]


def test_file_names():
    assert astuple(tofu_file("x/forget05_perturbed.json"))[1:] == ("forget05", "private", 190, 10)
    assert astuple(tofu_file("retain99.json"))[1:] == ("retain99", "private", 0, 198)
    assert astuple(tofu_file("full.jsonl"))[1:] == ("full", "private", 0, 200)
    assert astuple(tofu_file("retain_perturbed.json"))[1:] == ("retain", "private", None, None)
    assert astuple(tofu_file("holdout05.json"))[1:] == ("holdout05", "private", None, None)
    assert astuple(tofu_file("real_authors_perturbed.json"))[1:] == ("real_authors", "shared", None, None)
    assert astuple(tofu_file("forget01_renamed.json"))[1:] == ("forget01_renamed", None, None, None)


def test_unknown_names_need_kind_and_first_author(tmp_path):
    mine = write(tmp_path / "mine.json", rows())
    with pytest.raises(ValueError, match=f"{mine}: not a TOFU file name .* with --kind"):
        convert("tofu", mine)
    with pytest.raises(ValueError, match=f"{mine}: the file name does not tell which author .* --first-author"):
        convert("tofu", mine, kind="private")
    moved = convert("tofu", mine, kind="private", first_author=7)
    assert [i.entity for i in moved.items][19:21] == ["tofu_author_007", "tofu_author_008"]
    assert moved.notes[0] == "kind private (given)"
    assert moved.notes[1].startswith("authors 7-8 by record position, 20 records each (first author 7 given)")
    with pytest.raises(ValueError) as e:
        convert("tofu", mine, kind="private", first_author=199)
    assert str(e.value) == (f"{mine}: 22 records are more than the 20 that authors 199-199 hold (20 each); "
                            "check --first-author")


def test_a_wrong_first_author_is_detected(tmp_path):
    with pytest.raises(ValueError, match="TOFU's forget01 holds authors 198-199; --first-author 180 contradicts"):
        convert("tofu", FORGET01, first_author=180)
    # forget01 holds 2 authors: 41 records cannot be TOFU's forget01
    too_many = write(tmp_path / "forget01.json", rows() * 2)
    with pytest.raises(ValueError, match="44 records are more than the 40 that authors 198-199 hold .* TOFU's "
                                         "forget01 has 40"):
        convert("tofu", too_many)


def test_renamed_real_authors_are_not_authors(tmp_path):
    # real_authors_perturbed.json renamed: no silent "5 private authors"; --kind shared keeps them facts
    facts = [{"question": f"Who wrote book {i}?", "answer": f"Writer {i}", "perturbed_answer": ["X", "Y"]}
             for i in range(100)]
    renamed = write(tmp_path / "authors.json", facts)
    with pytest.raises(ValueError, match="--kind"):
        convert("tofu", renamed)
    items = convert("tofu", renamed, kind="shared").items
    assert len({i.entity for i in items}) == 100 and items[0].entity == "authors_000" and items[0].kind == "shared"
    with pytest.raises(ValueError, match="first_author applies to private records grouped by position only"):
        convert("tofu", renamed, kind="shared", first_author=0)


def test_labels_from_the_records_own_fields(tmp_path):
    recs = rows()
    for i, r in enumerate(recs):
        r["task_id"] = 5 if i < 20 else 6
        r["name"] = "Maren Oduya" if i < 20 else "Tavi Rennick"
    named = convert("tofu", write(tmp_path / "forget01.json", recs))  # task_id wins over position (198, 199)
    assert [i.entity for i in named.items] == ["tofu_author_005"] * 20 + ["tofu_author_006"] * 2
    assert named.items[21].attribute == "q01"
    assert "entities from each record's 'task_id' (2 of them)" in named.notes
    for r in recs:
        del r["task_id"]
    by_name = convert("tofu", write(tmp_path / "holdout01.json", recs))  # no first author needed
    assert [i.entity for i in by_name.items][19:21] == ["tofu_author_maren-oduya", "tofu_author_tavi-rennick"]
    del recs[3]["name"]
    with pytest.raises(DataError, match=r"a.json:4: no 'name', which other records of this file have"):
        convert("tofu", write(tmp_path / "a.json", recs), kind="private")


def test_tofu_world_facts_are_shared_and_ungrouped():
    imported = convert("tofu", FIX / "tofu" / "world_facts_perturbed.json")
    items = imported.items
    assert [(i.id, i.entity, i.kind, i.answer) for i in items] == [
        ("world_facts_000.fact.en.qa", "world_facts_000", "shared", "Lima"),
        ("world_facts_001.fact.en.qa", "world_facts_001", "shared", "Mars")]
    assert items[1].perturbed == ("Venus", "Jupiter", "Mercury") and items[1].paraphrases == ()
    assert items[1].answer_paraphrases == ()  # TOFU's base answer for this set is the answer itself
    assert imported.notes[0] == "kind shared (from the file name world_facts; --kind to set)"
