"""Expanding grids into cells: which runs a stage has, what each builds on, its resolved options, and digests that
change exactly when what the cell computes changes."""
import pytest

from obliviate.sweep.grid import GridError, load_grid
from obliviate.sweep.plan import combinations, plan_cells
from tests.sweep.grids import MISINFORMATION, OFFSIDE, write_grid


def by_id(cells):
    return {c.id: c for c in cells}


def test_misinformation_grid_runs_shared_stages_once(tmp_path):
    cells = by_id(plan_cells(load_grid(write_grid(tmp_path, MISINFORMATION))))
    assert list(cells)[:4] == ["world", "model/text", "pretrain", "inject"]
    unlearn = [c for c in cells.values() if c.stage == "unlearn"]
    assert [c.id for c in unlearn[:3]] == ["unlearn/method-ga_langs-en", "unlearn/method-ga_langs-L",
                                           "unlearn/method-ga_langs-en+L"]
    assert len(unlearn) == 9 and {c.depends for c in unlearn} == {("inject", "world")}
    ga, npo = cells["unlearn/method-ga_langs-en+L"].job, cells["unlearn/method-npo_langs-L"].job
    assert (ga.train["lr"], npo.train["lr"], cells["unlearn/method-idkpo_langs-en"].job.train["lr"]) == \
        (2e-3, 3e-3, 5e-3)  # when.method overrides the stage's lr
    assert ga.train["batch_size"] == 8 and ga.method_options == {"span": "value"}  # [defaults]
    assert cells["pretrain"].job.train["batch_size"] == 16 and cells["pretrain"].job.method_options == {}
    # the stack: unlearn sits on inject's adapter over pretrain's full model, built from the tiny model
    assert (ga.base, ga.adapter) == ("runs/pretrain/model", "runs/inject")
    assert cells["pretrain"].job.base == "models/text" and cells["pretrain"].depends == ("model/text", "world")
    assert ga.forget.select == {"modality": "text", "misinformation": True, "languages": ["en", "fr"]}
    assert ga.forget.path == "data/forget.langs-en+L/forget.jsonl" and ga.forget.source == "world/forget.jsonl"
    assert cells["inject"].job.data.path == "world/inject.jsonl"  # no filter: the file itself
    ev = cells["eval/text"].job
    assert ev.base == "runs/pretrain/model" and ev.base_name == "pretrained"
    assert list(ev.adapters) == ["inject"] + [c.id for c in unlearn]
    assert cells["eval/text"].depends[0] == "pretrain"


def test_offside_grid_excludes_and_restricts(tmp_path):
    (tmp_path / "vl-model").mkdir()
    (tmp_path / "vl-model" / "config.json").write_text("{}")
    grid = load_grid(write_grid(tmp_path, OFFSIDE))
    assert len(combinations(grid)) == 4
    cells = by_id(plan_cells(grid))
    assert [c for c in cells if c.startswith("unlearn/")] == [
        "unlearn/setting-complete_method-graddiff", "unlearn/setting-complete_method-npo",
        "unlearn/setting-selective_method-graddiff", "unlearn/setting-unimodal_method-graddiff"]
    assert [c for c in cells if c.startswith("relearn/")] == [
        "relearn/setting-complete_method-graddiff", "relearn/setting-complete_method-npo"]
    assert cells["unlearn/setting-selective_method-graddiff"].job.forget.name == "forget_private"
    assert cells["unlearn/setting-unimodal_method-graddiff"].job.text_only is True
    relearn = cells["relearn/setting-complete_method-npo"].job
    assert relearn.adapter == "runs/unlearn/setting-complete_method-npo"
    assert relearn.base == "runs/pretrain/model" and cells["pretrain"].job.base == str(tmp_path / "vl-model")
    assert len(cells["eval/vl"].job.adapters) == 6  # every adapter on pretrain's model, relearned ones included


def digests(tmp_path, text):
    return {c.id: c.digest for c in plan_cells(load_grid(write_grid(tmp_path, text)))}


def test_digests_follow_options_inputs_and_earlier_cells(tmp_path):
    (tmp_path / "vl-model").mkdir()
    (tmp_path / "vl-model" / "config.json").write_text("{}")
    first = digests(tmp_path, OFFSIDE)
    assert first == digests(tmp_path, OFFSIDE)
    assert len(set(first.values())) == len(first)
    # an option of the relearn stage: only its cells (and the evaluation) change
    changed = digests(tmp_path, OFFSIDE.replace('data = "relearn"\n', 'data = "relearn"\nsteps = 7\n'))
    assert {k for k in first if first[k] != changed[k]} == {
        "relearn/setting-complete_method-graddiff", "relearn/setting-complete_method-npo", "eval/vl"}
    # a data file's content: the cells reading it and everything after them
    (tmp_path / "relearn.jsonl").write_text("changed")
    assert {k for k, v in digests(tmp_path, OFFSIDE).items() if v != first[k]} == {
        "relearn/setting-complete_method-graddiff", "relearn/setting-complete_method-npo", "eval/vl"}
    # the base model's files: every cell
    (tmp_path / "vl-model" / "config.json").write_text('{"hidden_size": 8}')
    assert all(v != first[k] for k, v in digests(tmp_path, OFFSIDE).items())


@pytest.mark.parametrize("change, to, message", [
    ('lr = 5e-3', 'lr = "fast"', "at method-idkpo_langs-en: lr = 'fast': expected a number"),  # ga, npo override it
    ('method = "{method}"', 'method = "gd"', "at method-ga_langs-en: method 'gd' is not one of ga, graddiff"),
    ('steps = 2\nlr', 'steps = 2.5\nlr', "at method-ga_langs-en: steps = 2.5: expected an integer"),
])
def test_bad_values_are_reported_with_the_cell(tmp_path, change, to, message):
    with pytest.raises(GridError) as err:
        plan_cells(load_grid(write_grid(tmp_path, MISINFORMATION.replace(change, to))))
    assert f"[stages.unlearn] {message}" in str(err.value)


def test_data_filter_values_are_checked(tmp_path):
    text = MISINFORMATION.replace('max_entities = 2', 'max_entities = "two"')
    with pytest.raises(GridError, match=r"\[data.probe_retain\]: max_entities = 'two': expected a positive integer"):
        plan_cells(load_grid(write_grid(tmp_path, text)))
