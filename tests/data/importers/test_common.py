"""What importers share (obliviate.data.importers.common): reading a JSON array or JSON Lines source into records
whose errors name the file and the record; id-safe names."""
import pytest

from obliviate.data.importers.common import read_records, slug
from obliviate.data.schema import DataError


def test_records_are_located(tmp_path):
    lines = tmp_path / "a.json"  # JSON Lines whatever the extension: the first character decides
    lines.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [(r.where, r.index, r.data) for r in read_records(lines)] == [
        (f"{lines}:1", 0, {"a": 1}), (f"{lines}:3", 1, {"a": 2})]
    array = tmp_path / "b.jsonl"
    array.write_text(' [{"a": 1}, {"a": 2}]')
    assert [r.where for r in read_records(array)] == [f"{array}: record 1", f"{array}: record 2"]


def test_unreadable_sources(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?", "answer": "A."}\n\n{"question": \n')
    with pytest.raises(DataError) as e:
        read_records(bad)
    assert str(e.value) == f"{bad}:3: invalid JSON (Expecting value at column 14)"
    for text, problem in (("[]", "no records"), (" \n", "empty file"),
                          ("[1]", "record 1: expected a JSON object, got number")):
        path = tmp_path / "x.json"
        path.write_text(text)
        with pytest.raises(DataError) as e:
            read_records(path)
        assert str(e.value) == f"{path}: {problem}"
    with pytest.raises(DataError, match=r"missing.json: cannot read \(No such file or directory\)$"):
        read_records(tmp_path / "missing.json")


def test_slug():
    assert slug("Jean-Philippe Mateta") == "jean-philippe-mateta" and slug("Éder Militão") == "eder-militao"
    assert slug("四千万 美元") == "四千万-美元"  # no Latin letters: the characters are kept
