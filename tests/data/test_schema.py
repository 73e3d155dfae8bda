"""The item schema (obliviate.data.schema): round trips, every loader error with its exact message, the writer."""
import json
import os
import shutil

import pytest
from PIL import Image

from obliviate.data.schema import (KNOWN_LANGUAGES, LANGUAGES, MAX_FIELD_CHARS, DataError, Item, load_items,
                                   write_items)

FIELDS = ["id", "entity", "attribute", "kind", "language", "question", "answer", "value", "image", "truth",
          "paraphrases", "answer_paraphrases", "perturbed", "options"]


def rec(**over) -> dict:
    r = {"id": "p017.club.fr.q1", "entity": "p017", "attribute": "club", "kind": "shared", "language": "fr",
         "question": "Dans quel club joue Talen Brenik ?", "answer": "Talen Brenik joue pour Aldmoor FC.",
         "value": "Aldmoor FC"}
    r.update(over)
    return {k: v for k, v in r.items() if v is not ...}


def picture(path):
    """A real 4x4 PNG at `path` (the loader opens every image)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (200, 30, 30)).save(path)
    return path


@pytest.fixture(scope="module")
def bad_pictures(tmp_path_factory):
    """Damaged and oversized pictures: empty, truncated, a text file, corrupt chunks, 56 Mpx (over obliviate's
    limit, under PIL's bomb warning) and 182 Mpx (over PIL's DecompressionBombError threshold)."""
    d = tmp_path_factory.mktemp("pictures")
    good = picture(d / "good.png").read_bytes()
    (d / "empty.png").write_bytes(b"")
    (d / "trunc.png").write_bytes(good[: len(good) // 2])
    (d / "text.png").write_bytes(b"not a picture\n")
    (d / "corrupt.png").write_bytes(good[:16] + bytes(range(256)))
    Image.new("1", (8000, 7000)).save(d / "big.png")
    Image.new("1", (14000, 13000)).save(d / "bomb.png")
    return d


def write_lines(path, *lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln, ensure_ascii=False)) + "\n"
                            for ln in lines), encoding="utf-8")
    return path


def test_languages():
    assert list(LANGUAGES) == ["en", "de", "fr", "zh", "ru", "jv", "ur", "ha", "hy"]
    assert [c for c, x in LANGUAGES.items() if x.resource == "low"] == ["jv", "ur", "ha", "hy"]
    assert LANGUAGES["en"].group == "en" and LANGUAGES["de"].group == "high" and LANGUAGES["hy"].group == "low"
    assert {LANGUAGES[c].script for c in ("zh", "ru", "ur", "hy")} == {"Han", "Cyrillic", "Arabic", "Armenian"}
    assert len(KNOWN_LANGUAGES) == 183  # all of ISO 639-1
    assert {"es", "it", "ja", "ko", "ar", "hi", "pt"} <= KNOWN_LANGUAGES and "xx" not in KNOWN_LANGUAGES


def test_round_trip(tmp_path):
    full = Item(id="p003.transfer_fee.zh.q1.fake", entity="p003", attribute="transfer_fee", kind="private",
                language="zh", question="Talen Brenik的转会费是多少？", answer="Talen Brenik的转会费为€25M。",
                value="€25M", image="images/p003_1.png", truth="€8M", paraphrases=["转会费？"],
                answer_paraphrases=["转会费是€25M。"], perturbed=["Talen Brenik的转会费为€8M。", "Talen Brenik的转会费为€5M。"], options=["€8M", "€25M", "€5M"])
    minimal = Item.from_dict(rec(value=...))
    assert minimal.value is None and minimal.paraphrases == () and minimal.options == ()
    assert minimal.answer_paraphrases == () and full.answer_paraphrases == ("转会费是€25M。",)
    assert list(json.loads(full.to_json())) == FIELDS  # deterministic key order: declaration order
    assert "转会费" in full.to_json()  # UTF-8, not \u escapes
    assert Item.from_json(full.to_json()) == full and Item.from_dict(full.to_dict()) == full
    assert isinstance(full.perturbed, tuple) and hash(full) == hash(Item.from_json(full.to_json()))
    (tmp_path / "images").mkdir()
    picture(tmp_path / "images" / "p003_1.png")
    path = tmp_path / "d.jsonl"
    assert write_items(path, [full, minimal]) == 2
    first = path.read_bytes()
    assert load_items(path) == [full, minimal]
    write_items(path, load_items(path))
    assert path.read_bytes() == first and first.count(b"\n") == 2


def test_blank_lines_are_skipped_and_counted(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", "", rec(), "   ", rec(id="b", language="xx"))
    with pytest.raises(DataError) as e:
        load_items(path)
    assert str(e.value) == f"{path}:4: unknown language code 'xx'"


ERRORS = [  # (lines, line number of the error, problem)
    ([rec(), '{"id": '], 2, "invalid JSON (Expecting value at column 8)"),
    (['{"id": "a",}'], 1, "invalid JSON (Expecting property name enclosed in double quotes at column 12)"),
    (["[1, 2]"], 1, "expected a JSON object, got array"),
    (['"text"'], 1, "expected a JSON object, got string"),
    ([rec(question=...)], 1, "missing field 'question'"),
    ([rec(), rec(id="b", question=..., answer=...)], 2, "missing fields 'question', 'answer'"),
    ([rec(value=3)], 1, "field 'value' must be a string or null, got number"),
    ([rec(id=True)], 1, "field 'id' must be a string, got boolean"),
    ([rec(truth=["x"])], 1, "field 'truth' must be a string or null, got array"),
    ([rec(paraphrases="x")], 1, "field 'paraphrases' must be a list of strings, got string"),
    ([rec(answer_paraphrases=["x", 3])], 1,
     "field 'answer_paraphrases' must be a list of strings, got an array holding number"),
    ([rec(perturbed=["a", None])], 1, "field 'perturbed' must be a list of strings, got an array holding null"),
    ([rec(truht="x")], 1, "unknown field 'truht' (fields are: " + ", ".join(FIELDS) + ")"),
    (['{"id": "a", "id": "b"}'], 1, "duplicate key 'id'"),
    ([rec(kind="public")], 1, "field 'kind' must be 'shared' or 'private', got 'public'"),
    ([rec(language="xx")], 1, "unknown language code 'xx'"),
    ([rec(language="FR")], 1, "unknown language code 'FR'"),
    ([rec(question="  ")], 1, "field 'question' is empty"),
    ([rec(value="Brackwater United")], 1,
     "value 'Brackwater United' does not occur in answer 'Talen Brenik joue pour Aldmoor FC.'"),
    ([rec(options=["Corvale City", "Fallowmouth Town"])], 1, "options do not contain the correct answer 'Aldmoor FC'"),
    ([rec(options=["Aldmoor FC", "Corvale City", "Corvale City"])], 1, "duplicate option 'Corvale City'"),
    ([rec(image="missing.png")], 1, "image 'missing.png' not found"),
    ([rec(image="images")], 1, "image 'images' is not a file"),
    ([rec(image="../outside.png")], 1, "image path '../outside.png' escapes the dataset folder"),
    ([rec(image="images/../../outside.png")], 1, "image path 'images/../../outside.png' escapes the dataset folder"),
    ([rec(image="/etc/hostname")], 1,
     "image path '/etc/hostname' is absolute (it must be relative to the dataset folder)"),
    ([rec(image="link.png")], 1, "image path 'link.png' escapes the dataset folder"),  # symlink to ../outside.png
    ([rec(id="a"), rec(id="b"), rec(id="a")], 3, "duplicate id 'a' (first on line 1)"),
    # pictures: every one is opened (issue 10)
    ([rec(image="empty.png")], 1, "image 'empty.png' is not a readable picture (cannot identify image file)"),
    ([rec(image="text.png")], 1, "image 'text.png' is not a readable picture (cannot identify image file)"),
    ([rec(image="trunc.png")], 1, "image 'trunc.png' is not a readable picture ("),
    ([rec(image="corrupt.png")], 1, "image 'corrupt.png' is not a readable picture ("),
    ([rec(image="big.png")], 1, "image 'big.png' has 56,000,000 pixels, over the limit of 50,000,000"),
    ([rec(image="bomb.png")], 1, "image 'bomb.png' has 182,000,000 pixels, over the limit of 50,000,000"),
    # limits: no traceback, no memory (issue 10)
    (['{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"], 1, "JSON nested too deeply"),
    (['{"id": 1' + "0" * 5000 + "}"], 1, "a number of 5,001 digits"),
    ([rec(question="x" * (MAX_FIELD_CHARS + 1))], 1,
     f"field 'question' holds {MAX_FIELD_CHARS + 1:,} characters, over the limit of {MAX_FIELD_CHARS:,}"),
    ([rec(perturbed=["a", "y" * 200_000])], 1,
     f"field 'perturbed' holds 200,000 characters, over the limit of {MAX_FIELD_CHARS:,}"),
    (['{"id": "' + "z" * 4_000_001 + '"}'], 1, "a line of 4,000,011 characters, over the limit of 4,000,000"),
]


@pytest.mark.parametrize("lines,line,problem", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_loader_errors(tmp_path, lines, line, problem, bad_pictures):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    picture(tmp_path / "outside.png")
    os.symlink("../outside.png", data / "link.png")
    for f in bad_pictures.iterdir():
        shutil.copy(f, data / f.name)
    path = write_lines(data / "set.jsonl", *lines)
    with pytest.raises(DataError) as e:
        load_items(path)
    message = str(e.value)
    if problem.endswith("("):  # PIL's own words follow
        assert message.startswith(f"{path}:{line}: {problem}") and message.endswith(")")
    else:
        assert message == f"{path}:{line}: {problem}"
    assert "\n" not in message


def test_file_level_errors(tmp_path):
    for content in (b"", b"\n\n  \n"):
        (tmp_path / "e.jsonl").write_bytes(content)
        with pytest.raises(DataError) as e:
            load_items(tmp_path / "e.jsonl")
        assert str(e.value) == f"{tmp_path / 'e.jsonl'}: empty file"
    with pytest.raises(DataError) as e:
        load_items(tmp_path / "nope.jsonl")
    assert str(e.value) == f"{tmp_path / 'nope.jsonl'}: cannot read (No such file or directory)"
    (tmp_path / "u.jsonl").write_bytes(json.dumps(rec()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(DataError) as e:
        load_items(tmp_path / "u.jsonl")
    assert str(e.value) == f"{tmp_path / 'u.jsonl'}:2: not valid UTF-8"
    assert issubclass(DataError, ValueError)


def test_symlink_inside_folder_is_fine(tmp_path):
    (tmp_path / "images").mkdir()
    picture(tmp_path / "images" / "a.png")
    os.symlink("images/a.png", tmp_path / "b.png")
    path = write_lines(tmp_path / "d.jsonl", rec(image="b.png"), rec(id="2", image="./images/../images/a.png"),
                       rec(id="3", language="es"))
    assert [it.image for it in load_items(path)] == ["b.png", "./images/../images/a.png", None]


def test_constructor_validates():
    with pytest.raises(DataError, match="^unknown language code 'xx'$"):
        Item(**{**rec(), "language": "xx"})
    with pytest.raises(DataError, match="^field 'options' must be a list of strings, got string$"):
        Item(**{**rec(), "options": "abc"})
    with pytest.raises(DataError, match=r"^image path 'C:\\\\x.png' is absolute"):
        Item(**{**rec(), "image": "C:\\x.png"})
    item = Item(**{**rec(), "answer": "Talen Brenik joue pour Aldmoor FC.", "options": ["Aldmoor FC", "Corvale City"]})
    assert item.options == ("Aldmoor FC", "Corvale City")
    mc = Item(**{**rec(value=...), "answer": "B", "options": ["A", "B"]})  # no value: the answer is the option
    assert mc.options == ("A", "B")


def test_write_items_failures_leave_original(tmp_path):
    """write_items refuses what the loader would reject; any failure leaves the old file (atomic_file: test_files)."""
    path = tmp_path / "d.jsonl"
    write_items(path, [Item.from_dict(rec(id=f"i{k}")) for k in range(3)])
    before = path.read_bytes()

    def dying():  # fails after two items have been written to the temp file
        yield Item.from_dict(rec(id="x1"))
        yield Item.from_dict(rec(id="x2"))
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_items(path, dying())
    with pytest.raises(DataError) as e:
        write_items(path, [Item.from_dict(rec(id="a")), Item.from_dict(rec(id="b")), Item.from_dict(rec(id="a"))])
    assert str(e.value) == f"{path}: item 3: duplicate id 'a' (first at item 1)"
    with pytest.raises(DataError, match="no items to write"):
        write_items(path, [])
    with pytest.raises(TypeError, match="item 1 is a dict, not an Item"):
        write_items(path, [rec()])
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]

    fresh = tmp_path / "new.jsonl"  # a failed first write leaves no file at all
    with pytest.raises(RuntimeError):
        write_items(fresh, dying())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]
