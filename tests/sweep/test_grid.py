"""The grid file: the shipped grid loads, and every kind of mistake ends in one message naming the file and the
entry."""
from pathlib import Path

import pytest

import obliviate
from obliviate.sweep.grid import GridError, load_grid, parse_vars, value_label
from tests.sweep.grids import MISINFORMATION, OFFSIDE, write_grid

SHIPPED = Path(obliviate.__file__).parent / "recipes" / "grids" / "gpu-check.toml"


def test_shipped_grid_loads():
    grid = load_grid(SHIPPED)
    assert grid.name == "gpu-check" and list(grid.axes) == ["method", "seed"]
    assert grid.axes["seed"].values == (0, 1) and grid.axes["seed"].labels == ("0", "1")
    assert list(grid.stages) == ["pretrain", "unlearn"]
    assert grid.stages["unlearn"].when == {"method": {"ga": {"lr": 5e-3}}}
    assert grid.models["tiny"].tiny == "test" and grid.world["players"] == 12


def test_axis_values_and_labels(tmp_path):
    grid = load_grid(write_grid(tmp_path, MISINFORMATION))
    langs = grid.axes["langs"]
    assert langs.labels == ("en", "L", "en+L") and langs.value("en+L") == ["en", "fr"]
    assert [value_label(v) for v in (["en", "fr"], 2e-3, True, 3)] == ["en+fr", "0.002", "true", "3"]


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[axes]\nmethod = ga\n', "(at line 3, column 10)"),  # TOML syntax: tomllib's line and column
    ('colour = 1\n', "top level: unknown key 'colour'"),
    ('[axes]\nlr = [1e-3, 0.001]\n', "[axes] lr: two values have the same label"),
    ('[axes]\nlangs = [["en", "f r"]]\n', "[axes] langs: label 'en+f r'"),
    ('[models.m]\npath = "m"\n[stages.s]\njob = "unlearn"\nmodel = "m"\nforget = "nope"\nmethod = "ga"\n',
     "[stages.s]: forget: 'nope' is not a [data] name"),
    ('[models.m]\npath = "m"\n[stages.s]\njob = "learn"\nmodel = "m"\nstep = 3\n', "[stages.s]: unknown key 'step'"),
    ('[models.m]\npath = "m"\n[stages.s]\njob = "learn"\nmodel = "m"\nforget = "x"\n',
     "[stages.s]: unknown key 'forget'"),
    ('[models.m]\npath = "m"\n[stages.s]\njob = "learn"\nmodel = "m"\nseed = "{sede}"\n', "{sede} is not an axis"),
    ('[axes]\nm = ["ga"]\n[models.m]\npath = "m"\n[stages.s]\njob = "learn"\nmodel = "m"\nwhen.m.npo = { lr = 1 }\n',
     "'npo' is not a value of axis m"),
    ('[models.m]\npath = "m"\n[stages.a]\njob = "learn"\nafter = "b"\n[stages.b]\njob = "learn"\nafter = "a"\n',
     "form a loop (a -> b -> a)"),
    ('[models.m]\npath = "m"\n[stages.a]\njob = "learn"\nmodel = "m"\nafter = "a"\n', "either model"),
    ('[data]\nx = { file = "{world}/a.jsonl" }\n', "{world} needs a [world] table"),
    ('[world]\nplayers = 2\n', "[world]: players must be between 3 and 1000"),
    ('[models.m]\ntiny = "test"\n', "a tiny model needs texts"),
    ('[eval.e]\nbase = "nope"\nprobes = { a = "b" }\n', "base 'nope' is neither a stage nor a [models] name"),
    ('[eval.e]\nbase = "x"\nprobes = { a = "b" }\nbackend = "hf"\ncolour = 1\n', "[eval.e]: unknown key 'colour'"),
    ('exclude = [{ method = "x" }]\n[axes]\nmethod = ["ga"]\n', "exclude: 'x' is not a value of axis method"),
    ('[models.m]\npath = "m"\n[eval.e]\nbase = "m"\nprobes = { a = "b" }\nmax_new_tokens = "many"\n',
     "[eval.e]: max_new_tokens = 'many': expected an integer"),
    ('[models.m]\npath = "m"\n[eval.e]\nbase = "m"\nprobes = { a = "b" }\nbackend = "tgi"\n',
     "[eval.e]: backend must be one of auto, vllm, hf"),
    ('[models.m]\npath = "m"\n[eval.e]\nbase = "m"\nprobes = { a = "b" }\nlimit = 0\n',
     "[eval.e]: limit = 0: expected a positive integer"),
    ('[vars]\nmethod = "ga"\n[axes]\nmethod = ["ga"]\n', "[vars] method: variable names are identifiers other"),
    ('[vars]\nseed = 0\n[world]\nseed = "{seed}"\nplayers = "{seed}"\n',
     "[world]: players must be between 3 and 1000"),  # a variable keeps its type: players = 0
])
def test_bad_grids_name_the_file_and_the_entry(tmp_path, text, message):
    path = write_grid(tmp_path, text)
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)


VARS = """
[vars]
seed = 3
L = "fr"
[world]
seed = "{seed}"
players = 12
fake_language = "{L}"
[axes]
langs = { en = ["en"], L = ["{L}"], "en+L" = ["en", "{L}"] }
[models.m]
path = "model-{L}-{seed}"
"""


def test_vars_are_replaced_with_their_type_and_can_be_given(tmp_path):
    path = write_grid(tmp_path, VARS)
    grid = load_grid(path)
    assert grid.vars == {"seed": 3, "L": "fr"} and grid.world["seed"] == 3 and grid.world["fake_language"] == "fr"
    assert grid.axes["langs"].value("en+L") == ["en", "fr"] and grid.models["m"].path == "model-fr-3"
    other = load_grid(path, vars={"L": "de", "seed": 0})
    assert other.world == {"seed": 0, "players": 12, "fake_language": "de"}
    assert other.axes["langs"].value("L") == ["de"] and other.models["m"].path == "model-de-0"
    with pytest.raises(GridError, match=r"--set: 'sede' is not a variable of this grid \(its \[vars\]: seed, L\)"):
        load_grid(path, vars={"sede": 1})


def test_set_values_are_read_as_toml_else_as_strings():
    assert parse_vars(["seed=2", "lr=2e-3", "langs=[\"en\", \"fr\"]", "L=de", "flag=true", "name=\"x y\""]) == {
        "seed": 2, "lr": 2e-3, "langs": ["en", "fr"], "L": "de", "flag": True, "name": "x y"}
    for bad in ("seed", "=1", "two words=1"):
        with pytest.raises(GridError, match="expected NAME=VALUE"):
            parse_vars([bad])


def test_missing_grid_file(tmp_path):
    with pytest.raises(GridError, match="no such grid file"):
        load_grid(tmp_path / "none.toml")


def test_offside_grid_loads(tmp_path):
    grid = load_grid(write_grid(tmp_path, OFFSIDE))
    assert grid.exclude == ({"setting": "selective", "method": "npo"}, {"setting": "unimodal", "method": "npo"})
    assert grid.stages["relearn"].only == {"setting": ("complete",)}
