"""`obliviate bench step`: both providers compute the same NPO loss, and the bench writes its rows."""
import torch
from click.testing import CliRunner

from obliviate.bench import step as bench_step
from obliviate.bench.results import read_rows
from obliviate.cli.main import cli
from obliviate.train import losses
from obliviate.models.logprobs import token_logps


def test_fused_and_eager_log_probs_agree():
    model = bench_step.build_model("cpu", torch.float32, torch.device("cpu"))
    batch = bench_step.make_batch(bench_step.SHAPES["cpu"][-1], 2, 37, torch.device("cpu"), seed=3)
    with torch.no_grad():
        fused, eager = token_logps(model, batch), bench_step.eager_logps(model, batch)
    torch.testing.assert_close(fused, eager, atol=2e-5, rtol=1e-5)
    mask = batch["loss_mask"]
    assert mask.sum() == 2 * (37 - 37 // 2 - 1)
    shifted = fused + 0.5 * mask  # an NPO loss at θ ≠ ref is the same whichever path made the log-probs
    torch.testing.assert_close(losses.npo_loss(shifted, fused, mask), losses.npo_loss(eager + 0.5 * mask, eager, mask))


def test_bench_step_cli_writes_rows(tmp_path):
    out = tmp_path / "rows.jsonl"
    res = CliRunner().invoke(cli, ["bench", "step", "--batch", "1", "--length", "24", "--repeats", "1",
                                   "--results", str(out)])
    assert res.exit_code == 0, res.output
    assert "fused vs eager" in res.output
    rows = read_rows(out)
    assert {(r["provider"], r["metric"]) for r in rows} == {(p, m) for p in ("eager", "fused")
                                                            for m in ("step_ms", "tokens_per_s", "peak_mb")}
    assert all(r["median"] > 0 for r in rows)


def test_bench_step_on_a_real_model_folder(toy_model, tmp_path):
    """--model takes a local Hugging Face folder (here the toy model) instead of a random shape."""
    out = tmp_path / "rows.jsonl"
    res = CliRunner().invoke(cli, ["bench", "step", "--model", str(toy_model), "--batch", "1", "--length", "16",
                                   "--repeats", "1", "--results", str(out)])
    assert res.exit_code == 0, res.output
    rows = read_rows(out)
    assert {r["shape"] for r in rows} == {f"{toy_model.name}:1x16:r16"} and all(r["median"] > 0 for r in rows)
