"""The importers' entry points (obliviate.data.importers): `convert` and `import_dataset`. Malformed sources fail
with their exact message and write nothing; options belong to their format; progress on request."""
import json

import pytest

from obliviate.data.importers import convert, import_dataset, options_of
from obliviate.data.schema import DataError
from tests.data.importers import FIX


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
    ("tofu", "forget01.jsonl", [{"question": "Q?", "answer": "A."}, {"question": "Q?", "answer": 3}],
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


def test_progress_bar_on_request(tmp_path, capsys):
    import_dataset("tofu", FIX / "tofu" / "world_facts_perturbed.json", tmp_path / "w.jsonl", progress=True)
    assert "import tofu" in capsys.readouterr().err


def test_options_belong_to_their_format(tmp_path):
    assert options_of("offside") == ["image_root", "players_from"] and options_of("news") == ["language"]
    with pytest.raises(ValueError, match=r"format 'tofu' takes no option 'image_root' \(its options: kind, first_author\)"):
        convert("tofu", FIX / "tofu" / "world_facts_perturbed.json", image_root=tmp_path)
    with pytest.raises(ValueError, match=r"unknown format 'mllmu'"):
        convert("mllmu", FIX / "tofu" / "world_facts_perturbed.json")


@pytest.mark.parametrize("name,text,problem", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json: JSON nested too deeply"),
    ("deep.jsonl", "{}\n" + '{"q": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "deep.jsonl:2: JSON nested too deeply"),
    ("int.json", '[{"question": 1' + "0" * 5000 + "}]", "int.json: a number of 5,001 digits"),
])
def test_hostile_json_ends_in_one_message(tmp_path, name, text, problem):
    """Issue 10: 100,000-deep nesting and a 5,000-digit integer gave RecursionError / ValueError tracebacks."""
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as e:
        convert("tofu", tmp_path / name)
    assert str(e.value) == f"{tmp_path}/{problem}"
