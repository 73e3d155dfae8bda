"""`obliviate demo --model ... --set NAME=VALUE`: the real-model grid's variables reach the recipe; misuse is refused
before anything is written."""
import pytest
from click.testing import CliRunner

from obliviate.cli.main import cli


def test_set_values_reach_the_real_model_demo(tmp_path, monkeypatch):
    import obliviate.recipes.real as real

    seen = {}
    monkeypatch.setattr(real, "run_real_demo", lambda model, out, **options: seen.update(options, model=model))
    res = CliRunner().invoke(cli, ["demo", "--model", str(tmp_path), "--out", str(tmp_path / "out"), "--seed", "3",
                                   "--set", "inject_steps=36", "--set", "unlearn_lr=1e-4"])
    assert res.exit_code == 0, res.output
    assert seen["size"].grid == {"inject_steps": 36, "unlearn_lr": 1e-4} and seen["size"].inject_facts == 6
    assert seen["model"] == str(tmp_path) and seen["seed"] == 3


@pytest.mark.parametrize("args, code, message", [
    (["--set", "inject_steps=3"], 2, "--set gives the real-model grid's variables: it needs --model"),
    (["--model", "MODEL", "--set", "model=/elsewhere"], 1, "--set model: the demo sets it from --model"),
    (["--model", "MODEL", "--set", "backend=vllm"], 1, "--set backend: the demo sets it from --backend"),
    (["--model", "MODEL", "--set", "inject_stpes=3"], 1, "--set: 'inject_stpes' is not a variable of this grid"),
    (["--model", "MODEL", "--set", "inject_steps"], 1, "--set 'inject_steps': expected NAME=VALUE"),
])
def test_misused_set_is_refused_before_anything_is_written(tmp_path, args, code, message):
    out = tmp_path / "out"
    args = [str(tmp_path) if a == "MODEL" else a for a in args]
    res = CliRunner().invoke(cli, ["demo", "--out", str(out), *args])
    assert res.exit_code == code and message in res.output, res.output
    assert not out.exists()
