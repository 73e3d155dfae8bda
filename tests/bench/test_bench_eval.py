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
