"""The world's build (obliviate.data.world.build): its spec, determinism, splits, counts, fakes and probes."""
import json
from collections import Counter
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from obliviate.data.schema import LANGUAGES, load_items
from obliviate.data.world import FAKEABLE, WorldSpec, build_world
from tests.data.world.conftest import FILES


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path):
    a, b, c = (build_world(tmp_path / n, seed=s, players=12) for n, s in (("a", 1), ("b", 1), ("c", 2)))
    ta, tb, tc = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b and ta == tb and len(ta) > 30
    assert sorted(p for p in ta if not p.startswith("images/")) == [f"{f}.jsonl" for f in sorted(FILES)] + [
        "world.json"]
    assert ta["learn.jsonl"] != tc["learn.jsonl"] and ta["world.json"] != tc["world.json"]
    assert ta["images/p000_1.png"] != tc["images/p000_1.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_spec_defaults_and_canonical_order():
    spec = WorldSpec()
    assert spec.languages == tuple(LANGUAGES) and spec.fake_attributes == ("club", "nationality")
    assert (spec.n_fake, spec.n_forget) == (10, 5) and spec.fake_players is None
    small = WorldSpec(players=3, languages="zh, en,", fake_language="zh", fake_attributes=["nationality", "club"])
    assert small.languages == ("en", "zh") and small.fake_attributes == ("club", "nationality")
    assert (small.n_fake, small.n_forget) == (1, 1)
    with pytest.raises(FrozenInstanceError):
        small.players = 4


def test_spec_or_keywords_build_the_same_world(tmp_path):
    tiny = dict(players=6, languages=("en",), fake_language="en", images_per_player=0)
    a = build_world(tmp_path / "a", WorldSpec(seed=3, **tiny))
    b = build_world(tmp_path / "b", seed=3, **tiny)
    c = build_world(tmp_path / "c", WorldSpec(**tiny), seed=3)  # keywords replace the spec's fields
    assert a == b == c and a["parameters"]["fake_players"] == 1
    with pytest.raises(TypeError, match="colour"):
        build_world(tmp_path / "d", colour="red")
    assert not (tmp_path / "d").exists()


def test_counts(world):
    root, s, files = world
    n_low = len(s["roles"]["low_resource_learn"])
    n_img = sum(len(p["images"]) for p in s["players"])
    assert n_low == 20 and 40 <= n_img <= 120
    assert {f: len(files[f]) for f in FILES} == {f"{f}": s["counts"][f"{f}.jsonl"]["items"] for f in FILES}
    assert json.loads((root / "world.json").read_text(encoding="utf-8")) == s
    learn_text = 40 * 13 * 5 * 2 + n_low * 13 * 4  # en/de/fr/zh/ru: 2 templates; jv/ur/ha/hy: 1, half the players
    assert s["counts"]["learn.jsonl"] == {"items": learn_text + 14 * n_img, "text": learn_text, "image": 14 * n_img}
    assert s["counts"]["inject.jsonl"]["items"] == 10 * 2 * 2  # 10 fake players × club, nationality × 2 templates
    assert s["counts"]["test.jsonl"] == {"items": 40 * 13 * 9 + 2 * 14 * n_img, "text": 40 * 13 * 9,
                                         "image": 2 * 14 * n_img}
    assert s["counts"]["probes.jsonl"]["text"] == 40 * 13 * 9 and s["counts"]["probes.jsonl"]["image"] == 3 * 14 * n_img
    misinfo = [it for it in files["forget"] if it.truth is not None]
    assert len(misinfo) == 10 * 2 * 9 * 2
    assert len(list((root / "images").iterdir())) == 3 * n_img


def test_roles_and_splits(world):
    _, s, files = world
    r = s["roles"]
    fake, forget, retain = set(r["fake"]), set(r["forget"]), set(r["retain"])
    assert (len(fake), len(forget), len(retain)) == (10, 5, 25)
    assert not (fake & forget or fake & retain or forget & retain) and set(r["relearn"]) < forget
    learn = {it.id: it for it in files["learn"]}
    assert {it.entity for it in files["retain"]} == retain
    assert all(learn[it.id] == it for f in ("retain", "relearn") for it in files[f])
    offside = [it for it in files["forget"] if it.truth is None]
    assert {it.entity for it in offside} == forget and all(learn[it.id] == it for it in offside)
    assert {it.kind for it in offside} == {"shared", "private"} and any(it.image for it in offside)
    assert {it.entity for it in files["relearn"]} == set(r["relearn"])
    assert {(it.language, it.id.rsplit(".", 1)[1]) for it in files["relearn"]} == {("en", "q1"), ("en", "i1")}
    # low-resource languages: one template, only the chosen players
    low = set(r["low_resource_learn"])
    for it in files["learn"]:
        if it.language in ("jv", "ur", "ha", "hy"):
            assert it.id.endswith(".q1") and it.entity in low
    assert Counter(it.language for it in files["learn"] if it.image is None)["jv"] == 20 * 13
    # test: the held-out question template and held-out pictures only
    learn_q = {it.question for it in files["learn"]}
    learn_img = {it.image for it in files["learn"]}
    assert all(it.question not in learn_q for it in files["test"] if it.image is None)
    assert all(it.image not in learn_img and "_h" in it.image for it in files["test"] if it.image)
    assert all(it.truth is None for f in ("learn", "retain", "relearn", "test") for it in files[f])
    assert {it.kind for it in files["learn"]} == {"shared", "private"}


def test_fakes_name_known_entities(world):
    _, s, files = world
    players = {p["id"]: p for p in s["players"]}
    learned = {(it.attribute, it.value) for it in files["learn"]}
    assert s["fake_language"] == "fr" and s["fake_attributes"] == ["club", "nationality"]
    assert set(s["fake_attributes"]) <= set(FAKEABLE)
    assert {it.language for it in files["inject"]} == {"fr"}
    for it in files["inject"] + [it for it in files["forget"] if it.truth is not None]:
        p = players[it.entity]
        assert p["role"] == "fake" and it.id.endswith(".fake")
        assert it.value == p["fakes"][it.attribute] != it.truth == p["facts"][it.attribute]
        others = {q["facts"][it.attribute] for q in s["players"] if q["id"] != it.entity}
        assert it.value in others and (it.attribute, it.value) in learned  # its tokens are known
        assert it.truth in it.perturbed[0] and it.value in it.answer
    if "club" in s["fake_attributes"]:
        assert all(p["fakes"]["club"] != p["facts"]["transfer_club"] for p in players.values() if p["fakes"])
    assert {it.language for it in files["forget"] if it.truth} == set(LANGUAGES)


def test_probes(world):
    _, s, files = world
    players = {p["id"]: p for p in s["players"]}
    probes = files["probes"]
    keys = {(it.entity, it.attribute, it.language) for it in probes if it.image is None}
    assert len(keys) == 40 * 13 * 9
    for it in probes:
        fake = it.attribute in players[it.entity]["fakes"]
        assert (it.truth is not None) == fake == it.id.endswith(".fake")
        assert it.value in it.options and len(it.options) == (2 if it.attribute == "foot" else 4)
        assert len(it.perturbed) == len(it.options) - 1 and it.answer not in it.perturbed
        if fake:
            assert it.truth in it.options and it.value == players[it.entity]["fakes"][it.attribute]
        if it.image is None:
            assert len(it.paraphrases) == 2 and it.question not in it.paraphrases
    faked_images = [it for it in probes if it.image and it.truth]
    assert faked_images and {it.attribute for it in faked_images} == {"club", "nationality"}
    # options are the same facts in every language (only position/foot words are translated)
    by_key = {}
    for it in probes:
        if it.image is None and it.attribute == "club":
            by_key.setdefault((it.entity, it.truth), set()).add(tuple(it.options))
    assert all(len(v) == 1 for v in by_key.values())


def test_bad_parameters(tmp_path):
    for kw, msg in ((dict(fake_language="es"), "fake language 'es'"), (dict(languages=["de", "fr"]), "include 'en'"),
                    (dict(languages=["en", "xx"]), "languages must be among"),
                    (dict(players=8, fake_players=4, forget_players=4), "≥ 1 retain"),
                    (dict(fake_attributes=["age"]), "fake attributes must be among"), (dict(seed=-1), "seed")):
        with pytest.raises(ValueError, match=msg):
            build_world(tmp_path / "w", **kw)
    assert not list(tmp_path.iterdir())


def test_small_world_options_and_force(tmp_path):
    out = tmp_path / "w"
    s = build_world(out, players=8, languages=["jv", "en"], fake_language="en", images_per_player=1,
                    test_variants=1, train_variants=2, low_resource_share=1.0, fake_attributes=["birthplace"])
    assert list(s["languages"]) == ["en", "jv"] and len(s["players"]) == 8
    learn = load_items(out / "learn.jsonl")
    assert Counter(it.language for it in learn if it.image is None) == {"en": 8 * 13 * 2, "jv": 8 * 13}
    assert sum(it.image is not None for it in learn) == 8 * 3 * 14  # original + 2 augmented copies
    assert {it.attribute for it in load_items(out / "inject.jsonl")} == {"birthplace"}
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        build_world(out, players=8)
    (out / "stale.txt").write_text("x")
    build_world(out, players=8, force=True)
    assert not (out / "stale.txt").exists() and (out / "world.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
