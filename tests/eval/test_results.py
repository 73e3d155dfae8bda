"""results.json: written atomically, read back into the same rows, metadata and tables; what is not one is refused."""
import json

import pytest

from obliviate.eval import views
from obliviate.eval.results import EvalResult, load_results, write_results
from obliviate.eval.rows import EvalMeta, ProbeScores

from tests.eval.sample_rows import make_row


@pytest.fixture
def result():
    rows = [make_row(model=m, language=lang, correct=lang == "en", prob=0.25) for m in ("a", "b")
            for lang in ("en", "fr")] + [make_row(model="a", split="retain", correct=True)]
    meta = EvalMeta(model="models/m", backend="hf", models={"a": {"job": "base"}, "b": {}}, n_probes={"forget": 2})
    return EvalResult(rows, meta, views.all_views(rows, meta))


def test_round_trip(result, tmp_path):
    path = write_results(result, tmp_path / "out")
    assert path == tmp_path / "out" / "results.json" == result.path
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary left beside it
    for source in (path, path.parent):
        loaded = load_results(source)
        assert (loaded.rows, loaded.meta, loaded.tables, loaded.path) == (result.rows, result.meta, result.tables,
                                                                          path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == result.to_dict() and "prob" in data["rows"][0] and "prob" not in data["rows"][-1]
    assert ProbeScores().prob is None and loaded.rows[-1].prob is None
    assert result.table("correct by split").cols == ["forget", "retain"]
    with pytest.raises(KeyError, match="no table titled"):
        result.table("nothing")


def test_renamed_renames_rows_models_pairs_and_reference(result):
    from dataclasses import replace

    result = replace(result, meta=replace(result.meta, relearn_pairs={"b": "a"}, reference="a"))
    renamed = result.renamed({"a": "x", "c": "y"})
    assert [r.model for r in renamed.rows] == ["x", "x", "b", "b", "x"] and list(renamed.meta.models) == ["x", "b"]
    assert renamed.meta.relearn_pairs == {"b": "x"} and renamed.meta.reference == "x" and renamed.tables == []
    assert [r.model for r in result.rows] == ["a", "a", "b", "b", "a"]  # the original is unchanged
    assert [replace(r, model="") for r in renamed.rows] == [replace(r, model="") for r in result.rows]


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no evaluation results"):
        load_results(tmp_path)
    for text in ("{", "{}", '{"rows": [], "meta": {"model": "m", "surprise": 1}}',
                 '{"rows": [{"model": "m"}], "meta": {"model": "m"}}'):
        (tmp_path / "results.json").write_text(text)
        with pytest.raises(ValueError, match="not an obliviate results file"):
            load_results(tmp_path)
