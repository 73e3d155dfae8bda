"""The loop on a tiny stand-in model: one metrics line per step, the schedule, a NaN that stops the run before the
optimizer steps, and a crash after a checkpoint that `resume` continues to the same weights."""
import json
import math

import pytest
import torch

from obliviate.train import loop
from obliviate.train.loop import Diverged, accumulate, check_step, check_weights, make_optimizer, read_stats, train
from obliviate.train.options import MethodOptions, TrainOptions
from obliviate.train.stream import Stream, Streams

from tests.train.test_step import Toy
from tests.train.test_stream import example


def streams():
    return Streams(forget=Stream([example(i, 5 + i % 3) for i in range(6)], 2, 0, seed=0, number=0))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run(tmp_path, name, options, **kw):
    model = Toy()
    (tmp_path / name).mkdir(exist_ok=True)
    history = train(model, streams(), "nll", MethodOptions(), options, tmp_path / name, full=True, vocab_size=11,
                    device="cpu", progress=False, **kw)
    return model, history


def test_one_line_per_step_and_the_loss_falls(tmp_path):
    model, history = run(tmp_path, "a", TrainOptions(steps=12, lr=0.05, batch_size=2, grad_accum=2, warmup=3))
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert lines == history and [x["step"] for x in lines] == list(range(1, 13))
    assert set(lines[0]) == {"step", "loss", "tokens", "grad_norm", "lr", "tokens_per_s", "seconds"}
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert lines[0]["lr"] == pytest.approx(0.05 * 2 / 3)  # logged after the scheduler step: warm-up step 2 of 3


def test_schedule_warms_up_then_decays_to_zero():
    opt, sched = make_optimizer([torch.nn.Parameter(torch.zeros(1))], TrainOptions(steps=10, lr=1.0, warmup=2))
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0]) and lrs[-1] < 0.05


def test_statistics_are_averaged_over_micro_steps_and_read_once():
    totals = {}
    accumulate(totals, {"loss": torch.tensor(1.0), "tokens": torch.tensor(3)}, 2)
    accumulate(totals, {"loss": torch.tensor(2.0), "tokens": torch.tensor(4)}, 2)
    assert read_stats(totals, torch.tensor(0.5)) == {"loss": 1.5, "tokens": 7.0, "grad_norm": 0.5}


def test_guards():
    with pytest.raises(Diverged, match="diverged at step 5: loss is nan"):
        check_step({"loss": math.nan, "grad_norm": 1.0}, -30.0, 4)
    with pytest.raises(Diverged, match="forget log-prob -31.0 fell below -30.0"):
        check_step({"loss": 1.0, "forget_logp": -31.0, "grad_norm": 1.0}, -30.0, 4)
    with pytest.raises(Diverged, match="gradient norm is inf"):
        check_step({"loss": 1.0, "grad_norm": math.inf}, -30.0, 4)
    check_weights([torch.ones(3), torch.zeros(2)], 4)
    with pytest.raises(Diverged, match="diverged by step 4: the trainable weights hold NaN/inf"):
        check_weights([torch.ones(3), torch.tensor([0.0, math.inf])], 4)


def test_nan_weights_under_a_finite_loss_are_never_returned_nor_checkpointed(tmp_path):
    """Issue 10: `--clip nan` trained to a finite loss and published an all-NaN adapter; the guard looked at the
    loss before the step, not at the weights after it. A trainable tensor that no loss reaches holds NaN here:
    loss and gradient norm stay finite, and the weights check stops the run before the first save."""
    model = Toy()
    model.spare = torch.nn.Parameter(torch.full((4,), math.nan))  # trainable, outside the loss
    (tmp_path / "n").mkdir()
    with pytest.raises(Diverged, match="diverged by step 2: the trainable weights hold NaN/inf"):
        train(model, streams(), "nll", MethodOptions(), TrainOptions(steps=3, lr=0.1, batch_size=2, save_every=2),
              tmp_path / "n", full=True, vocab_size=11, device="cpu", progress=False)
    assert not list((tmp_path / "n").glob("ckpt-*"))
    assert len((tmp_path / "n" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("bad,problem", [
    (dict(steps=0), "steps must be an integer >= 1, got 0"), (dict(steps=-1), "steps must be an integer >= 1"),
    (dict(lr=math.inf), "lr must be a finite number > 0, got inf"), (dict(lr=math.nan), "lr must be a finite"),
    (dict(lr=-1.0), "lr must be a finite number > 0"), (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(clip=math.nan), "clip must be a finite number > 0"), (dict(batch_size=0), "batch_size must be an int"),
    (dict(grad_accum=0), "grad_accum must be an integer >= 1"), (dict(warmup=-1), "warmup must be an integer >= 0"),
    (dict(save_every=-1), "save_every must be an integer"), (dict(weight_decay=math.nan), "weight_decay must be"),
    (dict(schedule="linear"), "schedule must be 'cosine' or 'constant'"), (dict(steps=2.5), "steps must be an int"),
])
def test_options_are_checked_when_made(bad, problem):
    """Issue 10: `--steps 0` wrote an untrained adapter, `--lr inf` a traceback, `--grad-accum 0` a KeyError."""
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        TrainOptions(**bad)
    TrainOptions(seed=-1, warmup=50, steps=2)  # a negative seed and a warm-up past the end are fine


def test_a_nan_loss_stops_before_the_optimizer_steps(tmp_path):
    model = Toy()
    with torch.no_grad():
        model.lm_head.weight[0, 0] = math.nan
    before = weights(model)
    (tmp_path / "n").mkdir()
    with pytest.raises(Diverged):
        train(model, streams(), "nll", MethodOptions(), TrainOptions(steps=3, lr=0.1, batch_size=2), tmp_path / "n",
              full=True, vocab_size=11, device="cpu", progress=False)
    after = weights(model)
    assert all(torch.equal(before[k], after[k]) | torch.isnan(before[k]).any() for k in before)
    assert torch.equal(before["model.embed"], after["model.embed"])


def test_crash_after_a_checkpoint_then_resume_gives_the_same_weights(tmp_path, monkeypatch):
    options = TrainOptions(steps=8, lr=0.05, batch_size=2, save_every=3, warmup=2)
    whole, _ = run(tmp_path, "whole", options)
    saved = loop.save_checkpoint

    def save_then_crash(run_dir, step, *args, **kw):
        saved(run_dir, step, *args, **kw)
        if step == 6:
            raise KeyboardInterrupt("killed after the step-6 checkpoint")

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "crashed", options)
    monkeypatch.setattr(loop, "save_checkpoint", saved)
    resumed, history = run(tmp_path, "crashed", options, resume=True)
    assert [h["step"] for h in history] == list(range(1, 9))
    a, b = weights(whole), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
