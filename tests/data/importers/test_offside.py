"""OFFSIDE (obliviate.data.importers.offside): both layouts convert, load back and carry the values checked here by
hand; attributes and values are read from the question and answer text."""
import pytest

from obliviate.data.importers import convert, import_dataset
from obliviate.data.importers.offside import ATTRIBUTES, attribute_of, clean_question, value_of
from obliviate.data.schema import DataError, load_items
from tests.data.importers import FIX, by_id


def test_offside_generation_converts_and_loads(tmp_path):
    out = tmp_path / "sets" / "forget.jsonl"
    imported = import_dataset("offside", FIX / "offside" / "gen.json", out)
    items = load_items(out)
    assert [i.id for i in items] == [i.id for i in imported.items] and len(items) == 20
    got = by_id(items)

    # Player 1 has all 14 OFFSIDE attributes: 8 shared, 6 private.
    tomas = {i.attribute: i for i in items if i.entity == "Tomas Vell" and not i.id.endswith("-2")}
    assert sorted(tomas) == sorted(name for name, _, _ in ATTRIBUTES)
    assert sum(i.kind == "shared" for i in tomas.values()) == 8
    assert {a for a, i in tomas.items() if i.kind == "private"} == {
        "club_to", "club_from", "transfer_date", "transfer_fee", "market_value", "trophies"}
    values = {a: i.value for a, i in tomas.items()}
    assert values == {"name": "Tomas Vell", "age": "27", "position": "Left Winger", "nationality": "Denmark",
                      "birth_date": "April 3, 1998", "height": "1.84", "foot": "left",
                      "birthplace": "Aarhus, Denmark", "club_to": "Harbour Town FC",
                      "club_from": "Northgate Rovers", "transfer_date": "August 25, 2025",
                      "transfer_fee": "€35.00 million", "market_value": "2.50 million", "trophies": "1"}

    fee = got["tomas-vell.transfer_fee.en.gen-101"]
    assert fee.question == "I'm curious about the transfer fee for the player shown in the image."
    assert fee.answer == "The transfer fee was €35.00 million."
    assert fee.image == "images/finetune_set/101.png" and fee.language == "en"
    assert got["tomas-vell.height.en.gen-101"].question == \
        "I'm curious about the height of the player shown in this image"
    assert got["tomas-vell.height.en.gen-101-2"].answer == "He is 1.84 m tall."  # same fact, same image: -2
    # Player 2: `images` as a one-element list, a system turn skipped, "free transfer" as the fee.
    ari = got["ari-lund-okafor.club_to.en.gen-102"]
    assert (ari.entity, ari.value, ari.image) == ("Ari Lund-Okafor", "Kestrel Athletic", "images/finetune_set/102.png")
    assert got["ari-lund-okafor.transfer_fee.en.gen-102"].value == "free transfer"
    assert got["ari-lund-okafor.club_from.en.gen-102"].value == "Kestrel Athletic B"

    for rel in ("images/finetune_set/101.png", "images/finetune_set/102.png"):
        assert (out.parent / rel).read_bytes() == (FIX / "offside" / rel.removeprefix("images/")).read_bytes()
    import_dataset("offside", FIX / "offside" / "gen.json", out)  # again: identical images are left in place
    assert len(load_items(out)) == 20


def test_offside_text_only_takes_players_from_another_file(tmp_path):
    src = FIX / "offside" / "text.jsonl"
    with pytest.raises(DataError) as e:
        convert("offside", src)
    assert str(e.value) == (f"{src}:1: cannot tell which player this is: no 'player' field, no image, and no known "
                            "player name in the question (see players_from)")
    out = tmp_path / "text.jsonl"
    import_dataset("offside", src, out, players_from=FIX / "offside" / "gen.json")
    items = load_items(out)  # line 2 of the source is blank: record numbering follows lines
    assert [(i.id, i.entity, i.value, i.image) for i in items] == [
        ("tomas-vell.height.en.gen-text", "Tomas Vell", "1.84", None),
        ("ari-lund-okafor.club_from.en.gen-text", "Ari Lund-Okafor", "Kestrel Athletic B", None),
        ("tomas-vell.market_value.en.gen-text", "Tomas Vell", "€20k", None)]
    assert not (tmp_path / "images").exists()


def test_offside_multiple_choice(tmp_path):
    out = tmp_path / "mc.jsonl"
    import_dataset("offside-mc", FIX / "offside" / "mc.json", out)
    got = by_id(load_items(out))
    assert list(got) == ["tomas-vell.name.en.mc-101", "tomas-vell.club_from.en.mc-101",
                         "tomas-vell.transfer_fee.en.mc-101", "ari-lund-okafor.name.en.mc-102",
                         "ari-lund-okafor.trophies.en.mc-102"]
    club = got["tomas-vell.club_from.en.mc-101"]
    assert club.options == ("Harbour Town FC", "Kestrel Athletic", "Northgate Rovers", "Ferro Valley")
    assert club.answer == club.value == "Northgate Rovers" and club.kind == "private"
    fee = got["tomas-vell.transfer_fee.en.mc-101"]  # its record says "image", not "images"
    assert (fee.value, fee.image) == ("€35.00m", "images/finetune_set/101.png")
    name = got["ari-lund-okafor.name.en.mc-102"]  # option keys D, A, B, C are put in letter order
    assert name.options == ("Ari Lund-Okafor", "Sam Ode", "Per Holm", "Tomas Vell") and name.value == "Ari Lund-Okafor"
    assert got["ari-lund-okafor.trophies.en.mc-102"].value == "0"


@pytest.mark.parametrize("question, attribute", [
    ("What is the market value of the player in the image?", "market_value"),
    ("How many trophies did he win at the club in this image?", "trophies"),
    ("I'm curious about the transfer fee for the player shown here.", "transfer_fee"),
    ("When was the player in the picture transferred?", "transfer_date"),
    ("Which club did the player in the image come from?", "club_from"),
    ("Which club is the player in this image going to play for?", "club_to"),
    ("Where was the player in the image born?", "birthplace"),
    ("When was the player in the image born?", "birth_date"),
    ("What is the height of the player in this image?", "height"),   # "image" holds "age": not the age
    ("How old is the player shown in the image?", "age"),
    ("Which foot does the player prefer?", "foot"),
    ("What is the nationality of the player in the image?", "nationality"),
    ("What position does the player in the image play?", "position"),
    ("Who is the player in this image?", "name"),
    ("What does the player in the image eat?", None),
])
def test_attribute_from_question(question, attribute):
    assert attribute_of(question) == attribute


@pytest.mark.parametrize("attribute, answer, value", [
    ("name", "This is Noor Haddad.", "Noor Haddad"),
    ("position", "He occupies the position of Centre-Back.", "Centre-Back"),
    ("position", "He is a Goalkeeper.", "Goalkeeper"),
    ("club_to", "He is going to play for Ferro Valley.", "Ferro Valley"),
    ("club_to", "He was representing Ferro Valley at that time.", "Ferro Valley"),
    ("birthplace", "He was born in Sao Luis, Brazil.", "Sao Luis, Brazil"),
    ("birth_date", "Born on 4 March 2001.", "4 March 2001"),
    ("height", "He is 181 cm tall.", "181"),
    ("market_value", "The player's market value is €3.00m.", "€3.00m"),
    ("trophies", "They won 0 trophies at the club.", "0"),
    ("club_from", "Ferro Valley.", "Ferro Valley"),          # a short bare answer is taken whole
    ("nationality", "Sorry, I cannot tell you that right now.", None),
])
def test_value_from_answer(attribute, answer, value):
    assert value_of(attribute, answer) == value


def test_clean_question():
    assert clean_question("<image>\nWho is this player: <image>") == "Who is this player"
    assert clean_question("<image>\nHow tall is the player shown here <image>?") == "How tall is the player shown here?"


@pytest.fixture
def source(tmp_path):
    """An OFFSIDE source folder with one real picture, a text file named like one, a link leading out, and a
    secret beside (outside) the folder."""
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "101.png").write_bytes((FIX / "offside" / "finetune_set" / "101.png").read_bytes())
    (src / "set" / "fake.png").write_text("not a picture")
    (tmp_path / "secret.txt").write_text("secret")
    (src / "set" / "link.png").symlink_to(tmp_path / "secret.txt")
    return src


def record(image):
    return [{"messages": [{"role": "user", "content": "<image>\nWho is the player in the image?"},
                          {"role": "assistant", "content": "The player in the image is Tomas Vell."}],
             "images": image}]


@pytest.mark.parametrize("image,problem", [
    ("../../../../../../../../etc/hostname", "not found under {src} (paths leaving it are not followed)"),
    ("/etc/hostname", "not found under {src} (paths leaving it are not followed)"),
    ("../secret.txt", "not found under {src} (paths leaving it are not followed)"),
    ("./set/link.png", "not found under {src} (paths leaving it are not followed)"),
    ("./set/fake.png", "image './set/fake.png' is not a readable picture (cannot identify image file)"),
])
def test_import_copies_only_pictures_from_inside_the_source(source, tmp_path, image, problem):
    """Issue 10: an OFFSIDE record with "images": "../../../etc/hostname" landed as out/images/hostname, and nothing
    checked that a copied file is a picture: an untrusted dataset could pull any readable file into the output."""
    import json

    (source / "bad.json").write_text(json.dumps(record(image)))
    with pytest.raises(DataError) as e:
        import_dataset("offside", source / "bad.json", tmp_path / "out" / "o.jsonl")
    where = problem if "not found" not in problem else f"image {image!r} " + problem
    assert str(e.value) == f"{source / 'bad.json'}: record 1: " + where.replace("{src}", str(source))
    assert not (tmp_path / "out").exists()


def test_import_refuses_other_content_and_undoes_a_failed_copy(source, tmp_path, monkeypatch):
    import json

    from obliviate.data import importers

    (source / "good.json").write_text(json.dumps(record("./set/101.png")))
    out = tmp_path / "out" / "o.jsonl"
    importers.import_dataset("offside", source / "good.json", out)
    importers.import_dataset("offside", source / "good.json", out)  # the same again: nothing changes
    out.write_text(out.read_text() + "\n")
    with pytest.raises(FileExistsError, match=r"o\.jsonl: already exists with other content \(use --force"):
        importers.import_dataset("offside", source / "good.json", out)
    importers.import_dataset("offside", source / "good.json", out, force=True)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importers, "write_items", full_disk)
    with pytest.raises(OSError, match="No space left"):
        importers.import_dataset("offside", source / "good.json", tmp_path / "new" / "o.jsonl")
    assert not (tmp_path / "new").exists()  # the picture it had copied is gone again, and the folders it made
