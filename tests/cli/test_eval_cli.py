"""`obliviate eval`, `obliviate report` and `obliviate bench eval` through click (transformers backend: the vLLM
path is covered in tests/eval/test_backend_vllm.py and test_evaluate.py)."""
import json

import pytest
from click.testing import CliRunner

from obliviate.cli.main import cli
from obliviate.data.schema import write_items
from tests import toy
from tests.data.importers import FIX
from tests.eval.lora_setup import make_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model, named = make_setup(root, n_adapters=1, stacked=False)
    write_items(root / "forget.jsonl", toy.text_items(players=[0, 1]))
    write_items(root / "holdout.jsonl", toy.text_items(players=[2, 3]))
    return {"root": root, "model": model, "adapter": named["a0"]}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_eval_then_report(setup, tmp_path):
    r = setup["root"]
    res = invoke("eval", "--model", setup["model"], "--adapter", f"lora={setup['adapter']}", "--base-name", "base",
                 "--probes", r / "forget.jsonl", "--probes", r / "holdout.jsonl", "--out", tmp_path / "ev",
                 "--backend", "hf", "--device", "cpu", "--limit", 3, "--max-new-tokens", 4)
    assert res.exit_code == 0, res.output
    assert "12 rows (2 models × 6 probes, backend hf" in res.output
    assert "correct by split" in res.output
    data = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert {(row["model"], row["split"]) for row in data["rows"]} == {
        (m, s) for m in ("base", "lora") for s in ("forget", "holdout")}
    assert data["meta"]["mia"] == ["forget", "holdout"]
    assert all(len(row["generation"]) >= 0 and row["answer_tokens"] > 0 for row in data["rows"])
    assert (tmp_path / "ev" / "report.html").is_file()
    res = invoke("report", tmp_path / "ev", "--out", tmp_path / "again.html", "--title", "T")
    assert res.exit_code == 0, res.output
    assert "<title>T</title>" in (tmp_path / "again.html").read_text()


def test_text_only_and_free_answers(setup, tmp_path):
    r, model = setup["root"], setup["model"]
    pictures = tmp_path / "mixed.jsonl"
    write_items(pictures, toy.image_items(tmp_path) + toy.text_items(players=[0], languages=("en",)))
    res = invoke("eval", "--model", model, "--probes", pictures, "--out", tmp_path / "o", "--backend", "hf",
                 "--device", "cpu", "--no-score", "--no-report")
    assert res.exit_code == 1 and "is a text-only model (use --text-only to drop image items)" in res.output
    res = invoke("eval", "--model", model, "--probes", pictures, "--out", tmp_path / "o", "--backend", "hf",
                 "--device", "cpu", "--no-score", "--no-report", "--text-only", "--max-new-tokens", 4)
    assert res.exit_code == 0 and "2 rows (1 models × 2 probes" in res.output, res.output
    tofu = tmp_path / "forget01.jsonl"
    assert invoke("import", "tofu", FIX / "tofu" / "forget01_perturbed.json", tofu).exit_code == 0
    res = invoke("eval", "--model", model, "--probes", tofu, "--out", tmp_path / "t", "--backend", "hf",
                 "--device", "cpu", "--limit", 2, "--no-report", "--mc-style", "lenient")
    assert res.exit_code == 0, res.output
    assert "rougeL_recall by split" in res.output and "correct by split" not in res.output  # no 0% "correct"
    meta = json.loads((tmp_path / "t" / "results.json").read_text())["meta"]
    assert meta["mc_style"] == "lenient" and meta["max_new_tokens"] is None


def test_bad_probe_file_names_file_and_line(setup, tmp_path):
    good = toy.text_items(players=[0])[0].to_json()
    bad = tmp_path / "probes.jsonl"
    bad.write_text(good + "\n" + good.replace('"kind": "shared"', '"kind": "secret"') + "\n")
    res = invoke("eval", "--model", setup["model"], "--probes", bad, "--out", tmp_path / "o", "--backend", "hf")
    assert res.exit_code == 1
    assert f"{bad}:2: field 'kind' must be 'shared' or 'private'" in res.output
    assert not (tmp_path / "o" / "results.json").exists()


def test_option_errors(setup, tmp_path):
    r = setup["root"]
    res = invoke("eval", "--model", setup["model"], "--adapter", f"x={tmp_path / 'missing'}", "--probes",
                 r / "forget.jsonl", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "no such file or folder" in res.output
    res = invoke("eval", "--model", setup["model"], "--probes", r / "forget.jsonl", "--probes",
                 f"forget={r / 'holdout.jsonl'}", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "two entries named 'forget'" in res.output
    res = invoke("report", tmp_path)
    assert res.exit_code == 1 and "no evaluation results" in res.output


def test_bench_eval_smoke(tmp_path):
    out = tmp_path / "bench.jsonl"
    res = invoke("bench", "eval", "--providers", "hf", "--adapters", 2, "--probes", 3, "--new-tokens", 2,
                 "--results", out)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["metric"] for r in rows} == {"seconds", "probes_per_s", "tokens_per_s"}
    assert all(r["kernel"] == "eval" and r["provider"] == "hf" and r["median"] > 0 for r in rows)
    assert rows[0]["shape"] == "small:2x3:new2"


# -- issue 10: options checked before anything exists, results folders never replaced unasked --------------------

def eval_args(setup, out, *extra):
    r = setup["root"]
    return ("eval", "--model", setup["model"], "--adapter", f"lora={setup['adapter']}", "--probes",
            r / "forget.jsonl", "--out", out, "--backend", "hf", "--device", "cpu", "--limit", 2,
            "--max-new-tokens", 2, "--no-score", *extra)


@pytest.mark.parametrize("extra,problem", [
    (("--batch-size", 0), "Error: batch_size must be an integer >= 1, got 0"),
    (("--max-new-tokens", 0), "Error: max_new_tokens must be an integer >= 1, got 0"),
    (("--device", "tpu"), "Error: device 'tpu' is not a device (cpu, cuda, cuda:N, mps)"),
])
def test_bad_options_end_in_one_line_and_write_nothing(setup, tmp_path, extra, problem):
    """Issue 10: `eval --batch-size 0` and `--device tpu` gave tracebacks."""
    res = invoke(*eval_args(setup, tmp_path / "ev", *extra))
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1] == problem
    assert list(tmp_path.iterdir()) == []


def test_an_existing_results_folder_is_replaced_only_with_overwrite(setup, tmp_path):
    """Issue 10: `eval` replaced an existing results.json without a word."""
    assert invoke(*eval_args(setup, tmp_path / "ev", "--no-report")).exit_code == 0
    first = (tmp_path / "ev" / "results.json").read_bytes()
    res = invoke(*eval_args(setup, tmp_path / "ev"))
    assert res.exit_code == 1 and "ev: already exists and is not empty (use --overwrite to replace it" in res.output
    assert (tmp_path / "ev" / "results.json").read_bytes() == first
    res = invoke(*eval_args(setup, tmp_path / "ev", "--overwrite"))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["report.html", "results.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]  # no lock file, no temporary left


def test_an_adapter_of_another_model_ends_in_one_line(setup, tmp_path):
    """Issue 10: `eval --adapter` of another model gave a traceback (`unlearn` refused it cleanly)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other"  # a plain peft adapter (no stack file) made for a wider model
    shutil.copytree(setup["adapter"], other)
    (other / "obliviate_adapter.json").unlink(missing_ok=True)
    tensors = load_file(other / "adapter_model.safetensors")
    save_file({k: torch.zeros(v.shape[0], 2 * v.shape[1]) if "lora_A" in k else v for k, v in tensors.items()},
              other / "adapter_model.safetensors")
    res = invoke("eval", "--model", setup["model"], "--adapter", f"x={other}", "--probes",
                 setup["root"] / "forget.jsonl", "--out", tmp_path / "ev", "--backend", "hf")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith(f"Error: {other}: adapter does not match the model: ")
    labelled = tmp_path / "labelled"  # one whose stack file names another base
    shutil.copytree(setup["adapter"], labelled)
    (labelled / "obliviate_adapter.json").write_text(json.dumps({"base": str(tmp_path / "elsewhere"), "parents": []}))
    res = invoke("eval", "--model", setup["model"], "--adapter", f"x={labelled}", "--probes",
                 setup["root"] / "forget.jsonl", "--out", tmp_path / "ev", "--backend", "hf")
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1].startswith(
        f"Error: {labelled}: adapter was trained on {tmp_path / 'elsewhere'}, not on")
    assert not (tmp_path / "ev").exists()


def test_a_probe_longer_than_the_model_is_refused(setup, tmp_path):
    long = toy.text_items(players=[0])[0]
    write_items(tmp_path / "long.jsonl", [type(long)(**{**long.to_dict(), "question": "Which club? " * 1500})])
    res = invoke("eval", "--model", setup["model"], "--probes", tmp_path / "long.jsonl", "--out", tmp_path / "ev",
                 "--backend", "hf", "--max-new-tokens", 8)
    assert res.exit_code == 1 and "long: record p0.club.en takes" in res.output
    assert "+ 8 new tokens, more than the 2048 positions" in res.output and not (tmp_path / "ev").exists()
