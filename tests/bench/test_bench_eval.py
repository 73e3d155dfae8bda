"""`obliviate bench eval` in pieces: sizes and their overrides, the provider check, and one hf run written as rows
(the command line itself: tests/cli/test_eval_cli.py)."""
import pytest
import torch

from obliviate.bench import eval as bench_eval
from obliviate.bench.results import read_rows


def test_sizes_and_shape():
    assert bench_eval.SIZES["cpu"].shape == "small:4x200:new32"
    assert bench_eval.SIZES["gpu"].dtype == torch.bfloat16 and bench_eval.SIZES["gpu"].shape.startswith("qwen2.5")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown size"):
        bench_eval.run(size="huge")
    with pytest.raises(ValueError, match="unknown providers"):
        bench_eval.run(size="cpu", providers=["hf", "tgi"])


def test_hf_run_writes_rows(tmp_path):
    lines = []
    out = tmp_path / "rows.jsonl"
    rows = bench_eval.run(size="cpu", providers=["hf"], adapters=2, probes=3, new_tokens=2, repeats=2,
                          batch_size=4, results=out, workdir=tmp_path, echo=lines.append)
    assert rows == read_rows(out)
    assert {(r["provider"], r["metric"]) for r in rows} == {("hf", m) for m in
                                                            ("seconds", "probes_per_s", "tokens_per_s")}
    assert all(r["shape"] == "small:2x3:new2" and r["dtype"] == "fp32" and r["kernel"] == "eval" for r in rows)
    assert lines[0].startswith("bench eval (cpu): small:2x3:new2, 6 requests")
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # the work folder is cleaned up


def test_a_real_model_folder_with_the_fact_set_as_probes(toy_model, tmp_path):
    """--model: the given folder, probed with the shipped facts' questions (here the toy model stands in)."""
    lines = []
    rows = bench_eval.run(size="cpu", model=str(toy_model), providers=["hf"], adapters=2, probes=5, new_tokens=2,
                          repeats=1, batch_size=4, results=tmp_path / "r.jsonl", workdir=tmp_path, echo=lines.append)
    assert {r["shape"] for r in rows} == {f"{toy_model.name}:2x5:new2"}
    assert "10 requests" in lines[0]
    facts = bench_eval.fact_probes(5)
    assert [it.language for it in facts] == ["en", "de", "fr", "zh", "ru"]
