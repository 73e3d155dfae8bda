"""Plain documents: strict loader with file:line messages, atomic writer, round trip."""
import pytest

from obliviate.data.documents import Document, load_documents, write_documents
from obliviate.data.schema import DataError


def test_round_trip(tmp_path):
    docs = [Document("a", "fr", "PARIS — Une nouvelle."), Document("b", "zh", "新闻。")]
    assert write_documents(tmp_path / "d.jsonl", docs) == 2
    assert load_documents(tmp_path / "d.jsonl") == docs


@pytest.mark.parametrize("line,problem", [
    ('{"id": "a", "language": "fr"}', r"missing field\(s\) \['text'\]"),
    ('{"id": "a", "language": "fr", "text": "x", "title": "t"}', r"unknown field\(s\) \['title'\]"),
    ('{"id": "a", "language": "fr", "text": 3}', "field 'text' must be a string, got number"),
    ('{"id": "a", "language": "xx", "text": "x"}', "unknown language code 'xx'"),
    ('{"id": "a", "language": "fr", "text": "  "}', "empty text"),
    ('[1]', "expected a JSON object, got array"),
    ('{"id": "a", "language": "fr", "text": "x"', "invalid JSON"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "ok", "language": "en", "text": "fine"}\n\n' + line + "\n")
    with pytest.raises(DataError, match=rf"d.jsonl:3: {problem}"):
        load_documents(path)


def test_duplicate_ids_and_empty_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "language": "en", "text": "x"}\n{"id": "a", "language": "en", "text": "y"}\n')
    with pytest.raises(DataError, match=r":2: duplicate id 'a' \(first on line 1\)"):
        load_documents(path)
    path.write_text("\n")
    with pytest.raises(DataError, match="empty file"):
        load_documents(path)
