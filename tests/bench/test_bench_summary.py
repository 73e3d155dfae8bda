"""`obliviate bench summary`: one line per case, the newest row wins, filters by device and date, OOM shown."""
from click.testing import CliRunner

from obliviate.bench import results as res
from obliviate.bench.summary import select, summary_table
from obliviate.cli.main import cli


def _row(kernel, provider, metric, value, *, device="NVIDIA H200", date="2026-11-30T00:00:00+00:00"):
    return res.row(kernel=kernel, provider=provider, shape="N=8 H=4 V=16", dtype="bf16", metric=metric,
                   samples=value, device=device, env_versions={}, date=date)


def test_table_has_one_line_per_case_and_skips_the_matmul_peak():
    rows = [_row("matmul", "torch", "tflops", 700.0), _row("logprob", "fused", "ms", 2.0),
            _row("logprob", "fused", "peak_mb", 10.0), _row("logprob", "eager", "ms", 3.5),
            _row("logprob", "eager", "ms", None), _row("logprob", "fused", "ms", 1.25)]
    lines = summary_table(rows).splitlines()
    assert lines[0] == "device: NVIDIA H200"
    body = lines[3:]
    assert len(body) == 2 and not any("matmul" in line for line in body)
    fused = next(line for line in body if " fused " in line)
    eager = next(line for line in body if " eager " in line)
    assert "1.250" in fused and "2.000" not in fused and "10.0" in fused  # the newest time replaces the older one
    assert "OOM" in eager


def test_select_filters_device_and_date():
    rows = [_row("kl", "fused", "ms", 1.0, device="cpu x86_64 (2 threads)"),
            _row("kl", "fused", "ms", 2.0, date="2026-11-01T00:00:00+00:00"), _row("kl", "fused", "ms", 3.0)]
    assert [r["median"] for r in select(rows, device="h200")] == [2.0, 3.0]
    assert [r["median"] for r in select(rows, device="H200", since="2026-11-30")] == [3.0]
    assert summary_table([]) == "no benchmark rows"


def test_cli_prints_the_table(tmp_path):
    path = tmp_path / "r.jsonl"
    res.append_rows([_row("npo_step", "fused", "step_ms", 826.6), _row("npo_step", "fused", "tokens_per_s", 9911.0)],
                    path)
    result = CliRunner().invoke(cli, ["bench", "summary", str(path), "--device", "H200"])
    assert result.exit_code == 0, result.output
    assert "826.6" in result.output and "9911" in result.output
