"""`obliviate bench kernels` on tiny CPU shapes: tidy rows appended to a temporary results file, the CLI, the
profiler trace, and the CPU memory tracker the benchmark (and the kernel tests) rely on."""
import json
import math

import pytest
import torch
from click.testing import CliRunner

from obliviate.bench import results as res
from obliviate.bench.kernels import run
from obliviate.kernels.memory import TensorMemory
from obliviate.cli.main import cli


def test_run_appends_tidy_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = []
    rows = run(shapes=["32:200"], sizes=[16, 40], repeats=3, warmup=0, results=path, echo=lines.append)
    assert rows == res.read_rows(path)
    assert all(tuple(r) == res.COLUMNS for r in rows)
    peak = [r for r in rows if r["kernel"] == "matmul"]
    assert len(peak) == 1 and peak[0]["median"] > 0 and peak[0]["dtype"] == "fp32"
    cases = {(r["kernel"], r["provider"], r["shape"]) for r in rows if r["kernel"] != "matmul"}
    assert cases == {(k, p, f"N={n} H=32 V=200") for k in ("logprob", "kl") for p in ("eager", "fused")
                     for n in (16, 40)}  # liger needs CUDA
    for r in rows:
        assert r["device"].startswith("cpu") and r["versions"]["torch"] == torch.__version__
        assert r["p20"] <= r["median"] <= r["p80"] and math.isfinite(r["median"])
    ms = {(r["kernel"], r["provider"], r["shape"]): r["median"] for r in rows if r["metric"] == "ms"}
    tflops = {(r["kernel"], r["provider"], r["shape"]): r["median"] for r in rows if r["metric"] == "tflops"}
    key = ("logprob", "fused", "N=40 H=32 V=200")
    assert tflops[key] * 1e12 * ms[key] * 1e-3 == pytest.approx(4 * 40 * 32 * 200, rel=1e-6)  # odd repeats
    assert any("matmul peak" in s for s in lines) and any("[" in s and "fused" in s for s in lines)
    run(kernels=["logprob"], providers=["fused"], shapes=["32:200"], sizes=[16], repeats=1, warmup=0, results=path,
        echo=lines.append)
    assert len(res.read_rows(path)) == len(rows) + 1 + 4  # appended, not overwritten


def test_cli_kernels_with_profile(tmp_path):
    path, prof = tmp_path / "rows.jsonl", tmp_path / "prof"
    out = CliRunner().invoke(cli, ["bench", "kernels", "--kernels", "logprob", "--shapes", "24:100", "--sizes", "8",
                                   "--repeats", "1", "--warmup", "0", "--results", str(path), "--profile", str(prof)])
    assert out.exit_code == 0, out.output
    assert "rows appended" in out.output and "Self CPU" in out.output
    assert sorted(p.name for p in prof.iterdir()) == ["logprob-eager-24x100-N8.json", "logprob-fused-24x100-N8.json"]
    json.loads((prof / "logprob-fused-24x100-N8.json").read_text())
    assert len(res.read_rows(path)) == 1 + 2 * 4
    bad = CliRunner().invoke(cli, ["bench", "kernels", "--shapes", "huge", "--results", str(path)])
    assert bad.exit_code != 0 and "unknown shape 'huge'" in bad.output


def test_tensor_memory_counts_live_storage():
    with TensorMemory() as mem:
        a = torch.empty(1000)  # 4000 bytes
        b = a[:10]  # a view: no new storage
        del a
        c = torch.ones(500) * 2  # 2000 bytes (the product; the ones are freed)
        assert mem.live == 4000 + 2000
        del b, c
    assert mem.live == 0 and mem.largest == 4000 and 6000 <= mem.peak <= 8000
