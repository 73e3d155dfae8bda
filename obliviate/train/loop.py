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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from obliviate.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings; every job takes them as keyword options."""

    steps: int = 100
    lr: float = 1e-4  # LoRA; 1e-5..5e-5 for full fine-tuning (DESIGN §3)
    warmup: int = 0
    schedule: str = "cosine"  # "cosine" | "constant"
    batch_size: int = 8
    grad_accum: int = 1
    clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    save_every: int = 0  # 0 = only at the end
    # A GA-type run diverges when the forget answers' mean per-token log-prob falls below −divergence·ln(V):
    # ln V is what a uniform guess gives, so 3× that means the model is no longer predicting, only collapsing.
    divergence: float = 3.0


class Diverged(RuntimeError):
    """The loss became NaN/inf or ran away; the last good checkpoint is kept."""


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


def train(model, objective, options: TrainOptions, run_dir: Path, *, trainable, load_trainable, vocab_size: int,
          device, resume: bool = False, desc: str = "train", progress: bool = True) -> list[dict]:
    """Run `options.steps` optimizer steps of `objective` on `model`; returns the per-step metrics.

    `trainable()` returns the tensors a checkpoint stores (adapter or full weights); `load_trainable(t)` puts them
    back. Writes `metrics.jsonl` (one line per step) and `ckpt-*` folders under `run_dir`.
    """
    run_dir = Path(run_dir)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimizer(params, options)
    start, history = 0, []
    metrics_path = run_dir / "metrics.jsonl"
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        start, tensors = load_checkpoint(ckpt, optimizer, scheduler)
        load_trainable(tensors)
        if metrics_path.exists():  # drop lines logged after the checkpoint
            history = [json.loads(line) for line in metrics_path.read_text().splitlines()][:start]
    metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))
    floor = -options.divergence * math.log(vocab_size)
    model.train()
    bar = tqdm(range(start, options.steps), desc=desc, initial=start, total=options.steps, disable=not progress,
               dynamic_ncols=True)
    with open(metrics_path, "a") as log:
        for step in bar:
            t0 = time.perf_counter()
            totals: dict[str, float] = {}
            for micro in range(options.grad_accum):
                loss, stats = objective(model, step * options.grad_accum + micro, device)
                if not torch.isfinite(loss):
                    raise Diverged(f"step {step}: loss is {loss.item()}; last good checkpoint kept in {run_dir}")
                (loss / options.grad_accum).backward()
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v / (1 if k == "tokens" else options.grad_accum)
            if totals.get("forget_logp", 0.0) < floor:
                raise Diverged(f"step {step}: forget log-prob {totals['forget_logp']:.1f} fell below "
                               f"{floor:.1f} (= -{options.divergence}·ln V): the model is collapsing, not "
                               f"forgetting; lower --lr or --steps. Last good checkpoint kept in {run_dir}")
            grad_norm = torch.nn.utils.clip_grad_norm_(params, options.clip)
            if not torch.isfinite(grad_norm):
                raise Diverged(f"step {step}: gradient norm is {grad_norm.item()}; last good checkpoint kept")
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - t0
            row = {"step": step + 1, **{k: round(v, 6) for k, v in totals.items()},
                   "grad_norm": round(grad_norm.item(), 6), "lr": scheduler.get_last_lr()[0],
                   "tokens_per_s": round(totals.get("tokens", 0) / seconds, 1), "seconds": round(seconds, 4)}
            history.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
            if options.save_every and (step + 1) % options.save_every == 0 and step + 1 < options.steps:
                save_checkpoint(run_dir, step + 1, trainable(), optimizer, scheduler)
    model.eval()
    return history


def write_config(run_dir: Path, job: str, **config) -> None:
    """config.json of a run: the job and every option, JSON-ready."""
    def plain(v):
        if hasattr(v, "__dataclass_fields__"):
            return asdict(v)
        return str(v) if isinstance(v, Path) else v
    (run_dir / "config.json").write_text(json.dumps({"job": job, **{k: plain(v) for k, v in config.items()}},
                                                    indent=2, default=str) + "\n")
