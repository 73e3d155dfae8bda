"""The demo at its smallest size, end to end: every stage runs and every table and the report are complete."""
import json
import re

import pytest

from obliviate.recipes.demo import SIZES, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    lines = []
    result = run_demo(tmp_path_factory.mktemp("demo") / "out", size="tiny", echo=lines.append, progress=False)
    return result, lines


def test_every_stage_reports_its_time(demo):
    result, lines = demo
    done = [x for x in lines if re.match(r"\[\d+/10\] .*: done in [\d.]+s$", x)]
    assert len(done) == 10
    assert [s for s, _ in result.stages][-1] == "total"


def test_misinformation_table_has_every_method_and_language_set(demo):
    result, _ = demo
    numbers = result.numbers["misinformation"]
    expected = {f"{m}-{s}" for m in SIZES["tiny"].methods for s in ("en", "L", "en_L")} | {"pretrained", "injected"}
    assert set(numbers) == expected
    for cells in numbers.values():
        assert set(cells) == {"en", "L", "high", "low"}
        for fake, truth, n in cells.values():
            assert 0.0 <= fake <= 1.0 and 0.0 <= truth <= 1.0 and n > 0
    header = "| method | unlearned in | en | L (fr) | high-resource | low-resource |"
    assert re.sub(r" +", " ", header) in re.sub(r" +", " ", result.tables)


def test_offside_and_bounce_back_tables(demo):
    result, _ = demo
    offside = result.numbers["offside"]
    models = {key.split("|")[0] for key in offside}
    assert {"pretrained", "complete-graddiff", "complete-npo", "selective-graddiff", "unimodal-graddiff",
            "complete-graddiff+relearn", "complete-npo+relearn"} == models
    assert {key.split("|")[1] for key in offside} == {"text", "image"}
    for cells in offside.values():
        assert set(cells) == {"forget/shared", "forget/private", "retain/shared", "retain/private", "test/shared",
                              "test/private"}
    assert set(result.numbers["bounce_back"]) == {f"complete-{m}|{mod}" for m in ("graddiff", "npo")
                                                  for mod in ("text", "image")}


def test_outputs_on_disk(demo):
    result, _ = demo
    out = result.out
    assert (out / "tables.md").read_text().strip() == result.tables.strip()
    html = result.report.read_text()
    assert html.count("<table") >= 4 and "data:image/png;base64," in html
    for part in ("text", "vl"):
        rows = json.loads((out / "eval" / part / "results.json").read_text())["rows"]
        assert rows and all("generation" in r for r in rows)
    assert json.loads((out / "demo.json").read_text())["size"]["players"] == SIZES["tiny"].players


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        run_demo(tmp_path, size="tiny")
    assert (tmp_path / "x").read_text() == "keep me"
