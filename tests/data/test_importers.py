"""Importers: each hand-written fixture (tests/fixtures/{offside,tofu,news}) converts, loads back with
`load_items`, and carries the values checked here by hand; malformed sources fail with their exact message and
write nothing; the `obliviate import` command round-trips."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from obliviate.cli.importer import import_cmd
from obliviate.data.importers import FORMATS, convert, import_dataset, options_of
from obliviate.data.importers.news import real_detail
from obliviate.data.importers.offside import ATTRIBUTES, attribute_of, clean_question, value_of
from obliviate.data.schema import DataError, load_items

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def by_id(items):
    return {item.id: item for item in items}


# ---------------------------------------------------------------------------------------------------- OFFSIDE
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


# ------------------------------------------------------------------------------------------------------- TOFU
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


# ------------------------------------------------------------------------------------------------------- news
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


# -------------------------------------------------------------------------------------------- malformed input
GEN = {"messages": [{"role": "user", "content": "<image>\nWho is this?"},
                    {"role": "assistant", "content": "This is Noor Haddad."}], "images": "p.png"}
MC = {"Question": "Who is the player in the image?", "Options": {"A": "Noor Haddad", "B": "Per Holm"},
      "Correct_Answer": "A", "images": "p.png"}
NEWS = {"real_question": "Q?", "real_answer": "A.", "fake_question": "F?", "fake_answer": "B."}


@pytest.mark.parametrize("fmt, name, content, problem", [
    ("offside-mc", "src.json", [MC, {"Options": ["x", "y"], "Correct_Answer": "A"}], "record 2: missing 'Question'"),
    ("offside-mc", "src.json", [{**MC, "Correct_Answer": "E"}],
     "record 1: 'Correct_Answer' 'E' is neither an option letter (A, B) nor an option's text"),
    ("offside-mc", "src.json", [{**MC, "Options": {"A": "Noor Haddad", "C": "Per Holm"}}],
     "record 1: 'Options' keys must be the letters A, B, C, ... in turn, got ['A', 'C']"),
    ("offside-mc", "src.json", [{**MC, "Options": ["Noor Haddad", "Noor Haddad"]}],
     "record 1: duplicate option 'Noor Haddad'"),
    ("offside", "src.json", [{**GEN, "images": "missing.png"}], "record 1: image 'missing.png' not found under {dir}"),
    ("offside", "src.json", [{**GEN, "messages": GEN["messages"][:1]}],
     "record 1: 'messages' must be one user turn then one assistant turn, got roles ['user']"),
    ("offside", "src.jsonl", [{**GEN, "messages": [{"role": "user", "content": "What does he eat?"},
                                                   {"role": "assistant", "content": "Rice."}]}],
     "1: cannot tell which attribute the question asks for: 'What does he eat?'"),
    ("offside", "src.jsonl", [GEN, {**GEN, "messages": [{"role": "user", "content": "<image>\nWho is he?"},
                                                        {"role": "assistant", "content": "He is Per Holm."}]}],
     "2: image 'p.png' shows 'Per Holm' here but 'Noor Haddad' in {src}:1"),
    ("tofu", "src.jsonl", [{"question": "Q?", "answer": "A."}, {"question": "Q?", "answer": 3}],
     "2: 'answer' must be a string, got number"),
    ("tofu", "src.json", [["question", "answer"]], "record 1: expected a JSON object, got array"),
    ("news", "src.json", [{**NEWS, "sft_qas": [["only a question"]]}],
     "record 1: 'sft_qas' entry 1 must be {\"question\": ..., \"answer\": ...} or a [question, answer] pair "
     "of non-empty strings"),
    ("news", "src.json", [{**NEWS, "language": "Klingon"}],
     "record 1: unknown language 'Klingon' (an ISO 639-1 code or one of: armenian, chinese, english, french, "
     "german, hausa, javanese, russian, urdu)"),
    ("news", "src.json", [{**NEWS, "id": 3}, {**NEWS, "id": 3}],
     "record 2: duplicate id 'news003.real_news.en.probe' (first made from {src}: record 1)"),
    ("news", "src.json", [{**NEWS, "real_answer": "  "}], "record 1: 'real_answer' is empty"),
])
def test_malformed_source_names_file_and_record(tmp_path, fmt, name, content, problem):
    (tmp_path / "p.png").write_bytes((FIX / "offside" / "finetune_set" / "101.png").read_bytes())
    src, out = tmp_path / name, tmp_path / "out" / "items.jsonl"
    if name.endswith(".jsonl"):
        src.write_text("\n".join(json.dumps(r) for r in content) + "\n")
    else:
        src.write_text(json.dumps(content, indent=1))
    sep = ":" if name.endswith(".jsonl") else ": "
    with pytest.raises(DataError) as e:
        import_dataset(fmt, src, out)
    assert str(e.value) == f"{src}{sep}" + problem.replace("{src}", str(src)).replace("{dir}", str(tmp_path))
    assert not out.exists()


def test_unreadable_sources(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?", "answer": "A."}\n\n{"question": \n')
    with pytest.raises(DataError) as e:
        convert("tofu", bad)
    assert str(e.value) == f"{bad}:3: invalid JSON (Expecting value at column 14)"
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(DataError, match=r"empty.json: no records$"):
        convert("tofu", empty)
    with pytest.raises(ValueError, match=r"format 'tofu' takes no option 'image_root' \(its options: first_author\)"):
        convert("tofu", FIX / "tofu" / "world_facts_perturbed.json", image_root=tmp_path)
    with pytest.raises(ValueError, match=r"unknown format 'mllmu'"):
        convert("mllmu", empty)


def test_progress_bar_on_request(tmp_path, capsys):
    import_dataset("tofu", FIX / "tofu" / "world_facts_perturbed.json", tmp_path / "w.jsonl", progress=True)
    assert "import tofu" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_is_registered_as_import():
    from obliviate.cli.main import cli  # imports torch through the other commands: only here

    assert cli.commands["import"] is import_cmd


def test_cli_round_trip_and_help(tmp_path):
    runner = CliRunner()
    res = runner.invoke(import_cmd, ["--help"])
    assert res.exit_code == 0
    for fmt in FORMATS:
        assert fmt in res.output
    for opt in ("--image-root", "--players-from", "--first-author", "--language", "--progress"):
        assert opt in res.output

    out = tmp_path / "o" / "mc.jsonl"
    res = runner.invoke(import_cmd, ["offside-mc", str(FIX / "offside" / "mc.json"), str(out)])
    assert res.exit_code == 0, res.output
    assert res.output == f"wrote 5 items (2 entities, 2 images) to {out}\n"
    assert len(load_items(out)) == 5

    out = tmp_path / "tofu.jsonl"
    res = runner.invoke(import_cmd, ["tofu", str(FIX / "tofu" / "forget01_perturbed.json"), str(out),
                              "--first-author", "0"])
    assert res.exit_code == 0 and res.output == f"wrote 22 items (2 entities) to {out}\n"
    assert load_items(out)[-1].entity == "tofu_author_001"

    res = runner.invoke(import_cmd, ["tofu", str(FIX / "news" / "news.json"), str(tmp_path / "x.jsonl")])
    assert res.exit_code == 1 and f"Error: {FIX / 'news' / 'news.json'}: record 1: missing 'question'" in res.output
    res = runner.invoke(import_cmd, ["news", str(FIX / "news" / "news.json"), str(tmp_path / "x.jsonl"),
                              "--first-author", "3"])
    assert res.exit_code == 2 and "--first-author does not apply to format news" in res.output
    assert not (tmp_path / "x.jsonl").exists()
    assert options_of("offside") == ["image_root", "players_from"]
