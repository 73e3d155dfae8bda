"""The demo at its smallest size, end to end through the sweep: every cell runs, every table and the report are
complete, a rerun continues instead of starting over, and the grid's runs carry the papers' names."""
import json
import re

import pytest

from obliviate.recipes.demo import run_demo, text_runs, vision_runs
from obliviate.recipes.sizes import SIZES, grid_file
from obliviate.sweep.grid import load_grid
from obliviate.sweep.run import Sweep

TINY = load_grid(grid_file("tiny"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    lines = []
    result = run_demo(tmp_path_factory.mktemp("demo") / "out", size="tiny", echo=lines.append, progress=False)
    return result, lines


def test_every_cell_reports_its_time(demo):
    result, lines = demo
    cells = Sweep(grid_file("tiny")).cells
    done = [x for x in lines if re.match(r"\[\d+/23\] done +\S+ +[\d.]+s$", x)]
    assert len(cells) == 23 and len(done) == 23
    assert sorted(s for s, _ in result.stages[:-1]) == sorted(c.id for c in cells) and result.stages[-1][0] == "total"
    assert "2 local workers (CPU, 1 thread each)" in lines[0]  # this machine's 2 cores: both experiments at once


def test_misinformation_table_has_every_method_and_language_set(demo):
    result, _ = demo
    numbers = result.numbers["misinformation"]
    expected = {f"{m}-{s}" for m in TINY.axes["method"].labels for s in ("en", "L", "en_L")} | {"pretrained",
                                                                                                "injected"}
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
    numbers = json.loads((out / "demo.json").read_text())
    assert numbers["world"]["players"] == TINY.world["players"] and numbers["grid"] == "demo-tiny"
    assert json.loads((out / "sweep.json").read_text())["vars"] == {"seed": 0, "fake_language": "fr",
                                                                   "backend": "auto"}


def test_a_rerun_continues_the_same_demo_and_refuses_another(demo):
    result, _ = demo
    lines = []
    again = run_demo(result.out, size="tiny", echo=lines.append, progress=False)
    assert again.tables == result.tables
    assert sum(" skipped " in x for x in lines) == 23 and not any(" done " in x for x in lines)
    with pytest.raises(FileExistsError, match="is not this demo's folder"):
        run_demo(result.out, size="tiny", seed=1)


def test_runs_carry_the_papers_names():
    cells = Sweep(grid_file("tiny"), vars={"fake_language": "de"}).cells
    text = text_runs(cells, "de")
    assert list(text.values())[:5] == [("injected", "–", "–"), ("ga-en", "ga", "en"), ("npo-en", "npo", "en"),
                                       ("idkpo-en", "idkpo", "en"), ("ga-L", "ga", "de")]
    assert text["unlearn/method-npo_langs-en+L"] == ("npo-en_L", "npo", "en+de")
    assert list(vision_runs(cells).values()) == [
        ("complete-graddiff", "graddiff (complete)"), ("complete-npo", "npo (complete)"),
        ("selective-graddiff", "graddiff (selective)"), ("unimodal-graddiff", "graddiff (unimodal, text-only)"),
        ("complete-graddiff+relearn", "graddiff (complete) + relearn"),
        ("complete-npo+relearn", "npo (complete) + relearn")]


def test_every_size_is_a_grid_file():
    for size in SIZES:
        grid = load_grid(grid_file(size))
        assert grid.name == f"demo-{size}" and set(grid.vars) == {"seed", "fake_language", "backend"}
    with pytest.raises(ValueError, match="unknown demo size 'huge'"):
        grid_file("huge")


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        run_demo(tmp_path, size="tiny")
    assert (tmp_path / "x").read_text() == "keep me"


def test_seeds_combine_into_mean_and_sample_sd(demo):
    import copy

    from obliviate.recipes.demo import DemoResult, combine_seeds, demo_markdown

    result, _ = demo
    other = copy.deepcopy(result.numbers)
    other["seed"] = 1
    fake, truth, n = other["misinformation"]["injected"]["L"]
    other["misinformation"]["injected"]["L"] = (fake + 0.2, truth, n)  # seed 1's injection took better hold
    other["retain"]["pretrained"] = result.numbers["retain"]["pretrained"] - 0.1
    combined = combine_seeds([result, DemoResult(out=result.out, tables="", numbers=other)])
    cell = combined["misinformation"]["injected"]["L"][0]
    assert (cell.mean, cell.std, cell.n) == (pytest.approx(fake + 0.1), pytest.approx(0.2 / 2 ** 0.5), 2)
    assert combined["seeds"] == [0, 1] and combined["labels"] == result.numbers["labels"]
    tables = demo_markdown(combined)
    assert f"{100 * (fake + 0.1):.1f} ± {100 * 0.2 / 2 ** 0.5:.1f}" in tables
    assert " ± 0.0" in tables  # the cells no seed changed
    assert tables.count("\n|") == result.tables.count("\n|")  # the same rows as one run's tables


def test_single_run_tables_come_from_its_numbers(demo):
    from obliviate.recipes.demo import demo_markdown

    result, _ = demo
    assert demo_markdown(result.numbers) == result.tables


def test_seeds_need_two_different_seeds(tmp_path):
    from obliviate.recipes.demo import run_demo_seeds

    with pytest.raises(ValueError, match="at least two different seeds"):
        run_demo_seeds(tmp_path / "x", seeds=[3, 3], size="tiny")
    assert not (tmp_path / "x").exists()


def test_seeds_refuse_a_folder_of_something_else_before_any_seed_runs(tmp_path):
    from obliviate.recipes.demo import run_demo_seeds

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds notes.txt, which is not one of this demo's seeds"):
        run_demo_seeds(out, seeds=[0, 1], size="tiny")
    (out / "notes.txt").unlink()
    (out / "seed-1").mkdir()
    (out / "seed-1" / "sweep.json").write_text(json.dumps({"name": "demo-tiny", "vars": {
        "seed": 1, "fake_language": "de", "backend": "auto"}}))
    with pytest.raises(FileExistsError, match="seed-1: exists and is not empty \\(and is not this demo's folder"):
        run_demo_seeds(out, seeds=[0, 1], size="tiny")
    assert sorted(p.name for p in out.iterdir()) == ["seed-1"]  # seed 0 did not start


def test_seeds_continue_where_they_stopped(demo, tmp_path):
    """Stopped after seed 0 (the module's demo, copied with its times): the rerun skips seed 0's cells, runs seed
    1's, and a third run recomputes nothing."""
    import shutil

    from obliviate.recipes.demo import run_demo_seeds

    result, _ = demo
    out = tmp_path / "seeds"
    shutil.copytree(result.out, out / "seed-0")
    lines = []
    both = run_demo_seeds(out, seeds=[0, 1], size="tiny", echo=lines.append, progress=False)
    one = lines.index("== seed 1 ==")
    assert sum(" skipped " in x for x in lines[:one]) == 23 and not any(" done " in x for x in lines[:one])
    assert sum(" done " in x for x in lines[one:]) == 23
    assert both.numbers["seeds"] == [0, 1] and (out / "tables.md").read_text().startswith("Mean ± sample sd")
    lines.clear()
    again = run_demo_seeds(out, seeds=[0, 1], size="tiny", echo=lines.append, progress=False)
    assert again.tables == both.tables and not any(" done " in x for x in lines)
    with pytest.raises(FileExistsError, match=r"holds seed-1, which is not one of this demo's seeds \(seed-0, seed-2"):
        run_demo_seeds(out, seeds=[0, 2], size="tiny")
