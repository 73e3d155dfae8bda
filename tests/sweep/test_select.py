"""Data subsets: each filter, the roles of a world, the first N entities, and subsets with pictures that load
from their new folder."""
import json

import pytest

from obliviate.data.schema import load_items
from obliviate.sweep.cells import DataRef
from obliviate.sweep.select import materialize, select_items
from tests import toy


def ids(items):
    return [it.id for it in items]


@pytest.mark.parametrize("select, expected", [
    ({"languages": ["fr"], "attributes": ["club"]}, ["p0.club.fr", "p1.club.fr"]),
    ({"languages": ["en"], "ids": ["p1.*"]}, ["p1.club.en", "p1.country.en"]),
    ({"exclude_ids": ["*.fr", "*country*"]}, ["p0.club.en", "p1.club.en"]),
    ({"modality": "text", "misinformation": False, "kinds": ["shared"], "languages": ["en"], "max_entities": 1},
     ["p0.club.en", "p0.country.en"]),
    ({"misinformation": True}, []),
])
def test_filters_keep_file_order(select, expected):
    assert ids(select_items(toy.text_items(players=[0, 1]), select)) == expected


def test_roles_and_first_entities():
    items = toy.text_items(players=range(4), languages=("en",))
    roles = {"p0": "retain", "p1": "forget", "p2": "retain", "p3": "retain"}
    kept = select_items(items, {"roles": ["retain"], "max_entities": 2, "attributes": ["club"]}, roles=roles)
    assert ids(kept) == ["p0.club.en", "p2.club.en"]


def test_materialized_subset_with_pictures_loads(tmp_path):
    src = tmp_path / "src"
    items = toy.image_items(src) + toy.text_items(players=[0])
    toy.write(src, "all.jsonl", items)
    (src / "world.json").write_text(json.dumps({"players": [{"id": f"p{i}", "role": "forget" if i < 2 else "retain"}
                                                            for i in range(4)]}))
    ref = DataRef("pics", str(src / "all.jsonl"), {"modality": "image", "roles": ["forget"]}, "data/pics/pics.jsonl")
    out = tmp_path / "out"
    path = materialize(out, ref)
    assert path == out / "data/pics/pics.jsonl"
    loaded = load_items(path)  # checks every picture exists beside the file
    assert ids(loaded) == ["p0.club.img", "p1.club.img"]
    assert (path.parent / "images" / "p0.png").stat().st_ino == (src / "images" / "p0.png").stat().st_ino
    assert materialize(out, ref) == path  # a second writer: the same file, still whole
    assert materialize(out, DataRef("all", str(src / "all.jsonl"), {}, str(src / "all.jsonl"))) == src / "all.jsonl"


def test_empty_subset_and_missing_roles_are_errors(tmp_path):
    toy.write(tmp_path, "a.jsonl", toy.text_items(players=[0]))
    with pytest.raises(ValueError, match="no item of .*a.jsonl passes the filters"):
        materialize(tmp_path, DataRef("x", str(tmp_path / "a.jsonl"), {"languages": ["zh"]}, "data/x/x.jsonl"))
    with pytest.raises(ValueError, match="roles filter needs world.json"):
        materialize(tmp_path, DataRef("x", str(tmp_path / "a.jsonl"), {"roles": ["forget"]}, "data/x/x.jsonl"))
