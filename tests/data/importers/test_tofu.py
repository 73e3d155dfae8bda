"""TOFU (obliviate.data.importers.tofu): authors from the record order, perturbed answers and paraphrases."""
import json

import pytest

from obliviate.data.importers import convert, import_dataset
from obliviate.data.schema import DataError, load_items
from tests.data.importers import FIX


def test_tofu_authors_from_record_order(tmp_path):
    out = tmp_path / "forget01.jsonl"
    import_dataset("tofu", FIX / "tofu" / "forget01_perturbed.json", out)  # forget01: authors 198, 199
    items = load_items(out)
    assert [i.entity for i in items] == ["tofu_author_198"] * 20 + ["tofu_author_199"] * 2
    first, last = items[0], items[-1]
    assert first.id == "tofu_author_198.q00.en.qa" and last.id == "tofu_author_199.q01.en.qa"
    assert (first.kind, first.language, first.value, first.attribute) == ("private", "en", None, "q00")
    assert first.paraphrases == ("Who is the writer born in Kisumu in 1971?",)
    assert first.perturbed == ("The author born in Kisumu in 1971 is Selma Achieng.",
                               "The author born in Kisumu in 1971 is Peter Otieno.",
                               "The author born in Kisumu in 1971 is Rose Wanjiru.")
    assert last.answer == "Tavi Rennick was born in Tartu, Estonia."

    # The same records as a JSON array under another name: authors from first_author.
    rows = [json.loads(line) for line in (FIX / "tofu" / "forget01_perturbed.json").read_text().splitlines()]
    (tmp_path / "mine.json").write_text(json.dumps(rows))
    moved = convert("tofu", tmp_path / "mine.json", first_author=7).items
    assert [i.entity for i in moved][19:21] == ["tofu_author_007", "tofu_author_008"]
    assert [i.answer for i in moved] == [i.answer for i in items]
    with pytest.raises(DataError) as e:
        convert("tofu", tmp_path / "mine.json", first_author=199)
    assert str(e.value) == (f"{tmp_path / 'mine.json'}: record 21: author 200 is past TOFU's 200 authors "
                            "(record 21 from first author 199, 20 records each; set first_author)")


def test_tofu_world_facts_are_shared_and_ungrouped():
    items = convert("tofu", FIX / "tofu" / "world_facts_perturbed.json").items
    assert [(i.id, i.entity, i.kind, i.answer) for i in items] == [
        ("world_facts_000.fact.en.qa", "world_facts_000", "shared", "Lima"),
        ("world_facts_001.fact.en.qa", "world_facts_001", "shared", "Mars")]
    assert items[1].perturbed == ("Venus", "Jupiter", "Mercury") and items[1].paraphrases == ()
