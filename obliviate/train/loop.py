"""The training loop shared by learn, unlearn and relearn, written out:

    for step:  for micro-batch: forward → loss → backward   →   guard   →   clip   →   step   →   log   →   checkpoint

AdamW with linear warm-up then a cosine (or constant) schedule, gradient accumulation, gradient-norm clipping,
a seed that fixes data order and initialisation, and checkpoints from which a SIGKILLed run resumes to the very same
tensors (tests/train/test_resume.py).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from obliviate.files import appending, write_text
from obliviate.train.checkpoint import (latest_checkpoint, load_checkpoint, load_trainable_tensors, save_checkpoint,
                                       trainable_tensors)
from obliviate.train.options import MethodOptions, TrainOptions
from obliviate.train.step import loss_step
from obliviate.train.stream import Streams, next_batch


class Diverged(RuntimeError):
    """The loss, the gradient or the weights became NaN/inf, or the loss ran away; the last good checkpoint (if
    any) is kept and no output is written."""


def make_optimizer(params, options: TrainOptions):
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)

    def factor(step: int) -> float:  # multiplies lr; step counts optimizer steps from 0
        if step < options.warmup:
            return (step + 1) / options.warmup
        if options.schedule == "constant":
            return 1.0
        progress = (step - options.warmup) / max(1, options.steps - options.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(model, streams: Streams, method: str, method_options: MethodOptions, options: TrainOptions,
          run_dir: Path, *, full: bool, vocab_size: int, device, kl_reference=None, resume: bool = False,
          desc: str = "train", progress: bool = True) -> list[dict]:
    """Run `options.steps` optimizer steps of `method` on `model`; returns the per-step metrics.

    Checkpoints store the trainable tensors (the adapter, or every weight when `full`). Writes `metrics.jsonl`
    (one line per step) and `ckpt-*` folders under `run_dir`.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimizer(params, options)
    start, history = resume_state(model, optimizer, scheduler, run_dir, full=full, resume=resume)
    floor = -options.divergence * math.log(vocab_size)
    model.train()
    bar = tqdm(range(start, options.steps), desc=desc, initial=start, total=options.steps, disable=not progress,
               dynamic_ncols=True)
    with appending(run_dir / "metrics.jsonl") as log:
        for step in bar:
            t0 = time.perf_counter()
            totals: dict[str, torch.Tensor] = {}
            for micro in range(options.grad_accum):
                batch = next_batch(streams, step * options.grad_accum + micro, device, kl_reference=kl_reference)
                loss, stats = loss_step(model, batch, method, method_options)
                (loss / options.grad_accum).backward()
                accumulate(totals, stats, options.grad_accum)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, options.clip)
            logged = read_stats(totals, grad_norm)  # the step's one device -> host sync
            check_step(logged, floor, step)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            row = log_row(step, logged, scheduler.get_last_lr()[0], time.perf_counter() - t0)
            history.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
            if options.save_every and (step + 1) % options.save_every == 0 and step + 1 < options.steps:
                check_weights(params, step + 1)
                save_checkpoint(run_dir, step + 1, trainable_tensors(model, full=full), optimizer, scheduler)
    check_weights(params, options.steps)
    model.eval()
    return history


def resume_state(model, optimizer, scheduler, run_dir: Path, *, full: bool, resume: bool) -> tuple[int, list[dict]]:
    """(first step, metrics so far): from the run folder's last checkpoint when resuming, else (0, []). Rewrites
    metrics.jsonl to the lines logged up to that checkpoint."""
    start, history = 0, []
    metrics_path = run_dir / "metrics.jsonl"
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        start, tensors = load_checkpoint(ckpt, optimizer, scheduler)
        load_trainable_tensors(model, tensors, full=full)
        if metrics_path.exists():  # drop lines logged after the checkpoint
            history = [json.loads(line) for line in metrics_path.read_text().splitlines()][:start]
    write_text(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
    return start, history


def accumulate(totals: dict, stats: dict, grad_accum: int) -> None:
    """Add one micro-step's statistics: token counts summed, the others averaged over the accumulated steps."""
    for k, v in stats.items():
        v = v.detach().double()
        totals[k] = totals.get(k, 0.0) + (v if k == "tokens" else v / grad_accum)


def read_stats(totals: dict, grad_norm: torch.Tensor) -> dict[str, float]:
    """The step's statistics and gradient norm as Python floats, in one transfer."""
    names = list(totals) + ["grad_norm"]
    values = torch.stack([totals[k].to(grad_norm.device) for k in totals] + [grad_norm.detach().double()]).tolist()
    return dict(zip(names, values))


def check_step(logged: dict[str, float], floor: float, step: int) -> None:
    """Raise `Diverged` before the optimizer steps on a NaN/inf loss, a collapsing forget log-prob, or a NaN/inf
    gradient norm (steps count from 1)."""
    if not math.isfinite(logged["loss"]):
        raise Diverged(f"diverged at step {step + 1}: loss is {logged['loss']}")
    if logged.get("forget_logp", 0.0) < floor:
        raise Diverged(f"diverged at step {step + 1}: forget log-prob {logged['forget_logp']:.1f} fell below {floor:.1f} "
                       "(= -divergence·ln V): the model is collapsing, not forgetting; lower --lr or --steps")
    if not math.isfinite(logged["grad_norm"]):
        raise Diverged(f"diverged at step {step + 1}: gradient norm is {logged['grad_norm']}")


def check_weights(params: list[torch.Tensor], step: int) -> None:
    """Raise `Diverged` when a trainable tensor holds NaN/inf after `step` steps: checked before every save, since
    a finite loss says nothing about the weights the step has just written (a NaN clip bound, an inf lr)."""
    if not torch.stack([p.detach().isfinite().all() for p in params]).all():
        raise Diverged(f"diverged by step {step}: the trainable weights hold NaN/inf values")


def log_row(step: int, logged: dict[str, float], lr: float, seconds: float) -> dict:
    """One metrics.jsonl line."""
    row = {"step": step + 1, **{k: round(v, 6) for k, v in logged.items() if k != "grad_norm"},
           "grad_norm": round(logged["grad_norm"], 6), "lr": lr,
           "tokens_per_s": round(logged.get("tokens", 0) / seconds, 1), "seconds": round(seconds, 4)}
    return row
