"""`obliviate learn | unlearn | relearn`: one command per job of `obliviate.train.unlearner.Unlearner`."""
from __future__ import annotations

import functools

import click

from obliviate.models.options import DEFAULT_TARGETS, LoraOptions
from obliviate.train.options import METHODS, MethodOptions
from obliviate.train.options import TrainOptions


def _common(f):
    """Model, output and optimisation options shared by the three jobs."""
    options = [
        click.option("--model", "model", required=True, type=click.Path(exists=True, file_okay=False),
                     help="Base model: a local Hugging Face directory."),
        click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write."),
        click.option("--steps", type=int, default=None, help="Optimizer steps."),
        click.option("--lr", type=float, default=None, help="Peak learning rate (LoRA default 1e-4)."),
        click.option("--batch-size", type=int, default=None, help="Examples per micro-batch."),
        click.option("--grad-accum", type=int, default=None, help="Micro-batches per optimizer step."),
        click.option("--warmup", type=int, default=None, help="Linear warm-up steps."),
        click.option("--schedule", type=click.Choice(["cosine", "constant"]), default=None),
        click.option("--clip", type=float, default=None, help="Gradient-norm clipping bound."),
        click.option("--seed", type=int, default=None),
        click.option("--save-every", type=int, default=None, help="Checkpoint every N steps (0 = at the end)."),
        click.option("--resume", is_flag=True, help="Continue the unfinished run in --out from its last checkpoint "
                     "(same model, data and options); a finished one is reported, not retrained."),
        click.option("--force", is_flag=True, help="Replace the run in --out (finished or not) once this one succeeds."),
        click.option("--lora-r", type=int, default=None), click.option("--lora-alpha", type=int, default=None),
        click.option("--lora-dropout", type=float, default=None),
        click.option("--lora-targets", default=None, help=f"Comma-separated (default {','.join(DEFAULT_TARGETS)})."),
        click.option("--text-only", is_flag=True, help="Drop image items (OFFSIDE's unimodal setting)."),
        click.option("--device", default=None, help="cuda or cpu (default: cuda when available)."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _split(kw: dict):
    """Pop the shared options into (TrainOptions, LoraOptions, run keywords)."""
    names = ("steps", "lr", "batch_size", "grad_accum", "warmup", "schedule", "clip", "seed", "save_every")
    train = {k: kw.pop(k) for k in names}
    train = TrainOptions(**{k: v for k, v in train.items() if v is not None})
    lora = {"r": kw.pop("lora_r"), "alpha": kw.pop("lora_alpha"), "dropout": kw.pop("lora_dropout")}
    targets = kw.pop("lora_targets")
    if targets:
        lora["targets"] = tuple(t.strip() for t in targets.split(",") if t.strip())
    return train, LoraOptions(**{k: v for k, v in lora.items() if v is not None}), kw


def _report(result) -> None:
    last = result.metrics[-1] if result.metrics else {}
    out = result.adapter or result.model_dir
    if result.finished_before:
        click.echo(f"{result.run_dir}: finished already ({len(result.metrics)} steps); nothing to do (--force runs "
                   "it again)")
        return
    click.echo(f"wrote {out} ({len(result.metrics)} steps in {result.seconds:.1f}s; final loss "
               f"{last.get('loss', float('nan')):.4f}); metrics in {result.run_dir / 'metrics.jsonl'}")


def _run(job: str, kw: dict, **job_kw) -> None:
    """Build the options and the `Unlearner`, run `job`, print what it wrote; bad options, bad input and a
    divergence end in one line."""
    from obliviate.train.loop import Diverged
    from obliviate.train.unlearner import Unlearner

    try:
        options, lora, kw = _split(kw)
        u = Unlearner(kw["model"], adapter=kw["adapter"], reference=kw.get("reference"), lora=lora,
                      device=kw["device"])
        _report(getattr(u, job)(out=kw["out"], options=options, text_only=kw["text_only"], resume=kw["resume"],
                                force=kw["force"], **job_kw))
    except (ValueError, Diverged) as err:
        raise click.ClickException(str(err)) from err


@click.command()
@_common
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSONL question-answer items to learn.")
@click.option("--documents", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSONL plain documents (id, language, text) to learn as a language model, packed into blocks.")
@click.option("--block-size", type=click.IntRange(min=2), default=256, show_default=True,
              help="Tokens per packed block of --documents.")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
              help="Adapter (or run folder) merged beneath the new adapter.")
@click.option("--full", is_flag=True, help="Train every weight and write a whole model directory (model/).")
def learn(**kw):
    """Supervised fine-tuning on question-answer items (--data) and/or plain documents (--documents): put facts (or
    fakes) into a model as a LoRA adapter, or with --full into every weight."""
    _run("learn", kw, data=kw["data"], documents=kw["documents"], block_size=kw["block_size"], full=kw["full"])


@click.command()
@_common
@click.option("--forget", required=True, type=click.Path(exists=True, dir_okay=False), help="JSONL items to forget.")
@click.option("--retain", type=click.Path(exists=True, dir_okay=False), default=None, help="JSONL items to keep.")
@click.option("--method", type=click.Choice(METHODS), default="npo", show_default=True)
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
              help="Adapter (or run folder) merged into the base first, e.g. the output of `learn`.")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), default=None,
              help="Reference model directory (default: the model before unlearning).")
@click.option("--retain-ratio", type=float, default=None, help="Retain examples per forget example (OFFSIDE: 3).")
@click.option("--retain-loss", type=click.Choice(["nll", "kl"]), default="nll", show_default=True)
@click.option("--span", type=click.Choice(["answer", "value"]), default="answer", show_default=True,
              help="Forget loss over the whole answer or only the fact's tokens.")
@click.option("--beta", type=float, default=None, help="NPO/DPO β (0.1), SimNPO β (4.5).")
@click.option("--alpha", type=float, default=1.0, show_default=True, help="Weight of the retain term.")
@click.option("--delta", type=float, default=0.0, show_default=True, help="SimNPO margin δ.")
def unlearn(**kw):
    """Forget a set of items with GA, GradDiff, NPO, SimNPO, IdkPO or corrective PO, over a new LoRA adapter."""
    try:
        method = MethodOptions(beta=kw["beta"], alpha=kw["alpha"], delta=kw["delta"], retain_loss=kw["retain_loss"],
                               span=kw["span"])
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    _run("unlearn", kw, forget=kw["forget"], method=kw["method"], retain=kw["retain"],
         retain_ratio=kw["retain_ratio"], method_options=method)


@click.command()
@_common
@click.option("--adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="The unlearned adapter (or its run folder) to attack.")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="JSONL relearn set.")
def relearn(**kw):
    """The relearning attack: fine-tune an unlearned model on a few items and see what comes back."""
    _run("relearn", kw, data=kw["data"])
