"""The embedded world: determinism, splits, counts, native scripts, fakes, pictures."""
import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from obliviate.data.schema import LANGUAGES, load_items
from obliviate.data.world.build import (FAKEABLE, IMAGE_ATTRIBUTES, PRIVATE, SHARED, TEXT_ATTRIBUTES, age_on,
                                    build_world)
from obliviate.data.world.text import CLUBS, IMAGE_TEXT, TEXT, WORDS, extras

FILES = ("learn", "inject", "forget", "retain", "relearn", "test", "probes")
SCRIPT = {"zh": "CJK", "ru": "CYRILLIC", "ur": "ARABIC", "hy": "ARMENIAN"}  # first word of the Unicode name


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("w") / "world"
    summary = build_world(root, seed=0)
    return root, summary, {f: load_items(root / f"{f}.jsonl") for f in FILES}


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


def test_templates_complete_and_native():
    assert set(TEXT) == set(LANGUAGES) == set(WORDS) and set(IMAGE_TEXT) == set(IMAGE_ATTRIBUTES)
    assert len(SHARED) >= 8 and len(PRIVATE) >= 4
    for lang, table in TEXT.items():
        assert set(table) == set(TEXT_ATTRIBUTES)
        for attr, (q1, q2, p, a) in table.items():
            assert len({q1, q2, p}) == 3 and all("{name}" in q and "{value}" not in q for q in (q1, q2, p))
            assert "{name}" in a and "{value}" in a
            for text in (q1, q2, p, a):
                letters = [ch for ch in text.format(name="", value="", **extras(lang, attr, "5"))
                           if unicodedata.category(ch).startswith("L")]
                scripts = {unicodedata.name(ch).split()[0] for ch in letters}
                assert len(letters) >= 2 and scripts == {SCRIPT.get(lang, "LATIN")}, (lang, attr, text, scripts)
    for lang in SCRIPT:
        for words in WORDS[lang].values():
            assert all(unicodedata.name(ch).startswith(SCRIPT[lang]) for w in words.values() for ch in w if ch != " ")


def test_items_in_their_script(world):
    _, s, files = world
    names = {p["name"] for p in s["players"]}
    seen = Counter()
    for it in files["probes"] + files["test"]:
        if it.image is not None:
            assert it.language == "en"
            continue
        seen[it.language] += 1
        text = it.question + " " + it.answer + " ".join(it.paraphrases)
        for span in sorted(names | {it.value}, key=len, reverse=True):
            text = text.replace(span, " ")
        scripts = {unicodedata.name(ch).split()[0] for ch in text if unicodedata.category(ch).startswith("L")}
        assert scripts == {SCRIPT.get(it.language, "LATIN")}, (it.id, scripts)
    assert set(seen) == set(LANGUAGES) and len(set(seen.values())) == 1


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


def test_facts_consistent(world):
    _, s, files = world
    countries = dict((c, set(cities)) for c, cities in s["countries"].items())
    for p in s["players"]:
        f = p["facts"]
        assert f["birthplace"] in countries[f["nationality"]] and f["transfer_club"] != f["club"]
        assert int(f["age"]) == age_on(f["birth_date"])
    assert {p["facts"]["club"] for p in s["players"]} == {c[0] for c in CLUBS}  # every club is someone's club
    assert len({p["name"] for p in s["players"]}) == 40
    for club in CLUBS:  # pattern × hair and shirt number tell the players of a club apart
        looks = [p["look"] for p in s["players"] if p["facts"]["club"] == club[0]]
        assert len({(lk["pattern"], lk["hair"]) for lk in looks}) == len(looks) == len({lk["number"] for lk in looks})
    ru = [it for it in files["learn"] if it.id.startswith("p000.age.ru.")]
    assert ru and all(("лет" in it.answer) == (int(it.value) % 10 in (0, 5, 6, 7, 8, 9) or int(it.value) in
                                                range(11, 15)) for it in ru)


def test_pictures_show_the_club(world):
    root, s, _ = world
    kits = np.array([c[1] for c in CLUBS], dtype=np.float32)  # (8, 3)
    right = total = 0
    for p in s["players"]:
        for rel in p["images"] + [h for hs in p["heldout_images"] for h in hs]:
            im = Image.open(root / rel)
            assert im.size == (56, 56) and im.mode == "RGB" and not im.info
            a = np.asarray(im, dtype=np.float32)[20:40, 14:42].reshape(-1, 3)  # (560, 3) torso window
            nearest = np.argmin(((a[:, None, :] - kits[None]) ** 2).sum(-1), axis=1)  # (560,)
            votes = np.bincount(nearest, minlength=len(CLUBS))
            right += CLUBS[int(votes.argmax())][0] == p["facts"]["club"]
            total += 1
    assert right / total > 0.9, (right, total)


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
