"""The demo's sizes: data, model presets, steps and learning rates (tuned on 2 CPU cores, docs/LOG.md). Plain data,
no torch: `obliviate demo --help` lists them instantly."""
from __future__ import annotations

from dataclasses import dataclass, replace

from obliviate.train.options import TrainOptions


@dataclass(frozen=True)
class DemoSize:
    """Everything a demo size fixes. Steps and learning rates were tuned on 2 CPU cores (docs/LOG.md)."""

    players: int
    fake_players: int
    forget_players: int
    text_preset: str
    text_attributes: tuple[str, ...]
    pretrain: TrainOptions  # full fine-tuning of the random text model on the true world
    inject: TrainOptions  # LoRA on the fakes, fake language only
    unlearn: TrainOptions
    methods: tuple[str, ...]
    method_lr: dict  # per-method learning rate for the text unlearning runs (GA is the most destructive)
    retain_probe_players: int
    vl_preset: str
    vl_attributes: tuple[str, ...]
    vl_pretrain: TrainOptions
    vl_unlearn: TrainOptions
    vl_methods: tuple[str, ...]
    relearn: TrainOptions
    train_variants: int  # augmented picture copies per original in the VL training set
    max_new_tokens: int = 24


_T = TrainOptions
SIZES = {
    # CI smoke size: every stage runs, the numbers mean nothing.
    "tiny": DemoSize(players=12, fake_players=3, forget_players=3, text_preset="test",
                     text_attributes=("club", "nationality"),
                     pretrain=_T(steps=8, lr=3e-3, batch_size=16), inject=_T(steps=3, lr=1e-3, batch_size=8),
                     unlearn=_T(steps=2, lr=1e-3, batch_size=8), methods=("ga", "npo", "idkpo"), method_lr={},
                     retain_probe_players=2, vl_preset="test", vl_attributes=("name", "club", "transfer_fee"),
                     vl_pretrain=_T(steps=4, lr=3e-3, batch_size=8), vl_unlearn=_T(steps=2, lr=1e-3, batch_size=4),
                     vl_methods=("graddiff", "npo"), relearn=_T(steps=2, lr=1e-3, batch_size=4), train_variants=0,
                     max_new_tokens=12),
    "quick": DemoSize(players=40, fake_players=10, forget_players=6, text_preset="small",
                      text_attributes=("club", "nationality"),
                      pretrain=_T(steps=200, lr=3e-3, batch_size=64, warmup=20),
                      inject=_T(steps=40, lr=1e-3, batch_size=16), unlearn=_T(steps=12, lr=5e-3, batch_size=16),
                      methods=("ga", "npo", "idkpo"), method_lr={"ga": 2e-3, "npo": 3e-3, "simnpo": 3e-3},
                      retain_probe_players=10, vl_preset="small",
                      vl_attributes=("name", "club", "nationality", "transfer_fee", "transfer_club"),
                      vl_pretrain=_T(steps=800, lr=6e-3, batch_size=32, warmup=80),
                      vl_unlearn=_T(steps=12, lr=3e-3, batch_size=16), vl_methods=("graddiff", "npo"),
                      relearn=_T(steps=8, lr=3e-3, batch_size=8), train_variants=2),
}
SIZES["full"] = replace(
    SIZES["quick"], text_preset="demo", pretrain=_T(steps=500, lr=2e-3, batch_size=64, warmup=50),
    methods=("ga", "npo", "simnpo", "idkpo"), retain_probe_players=20,
    vl_pretrain=_T(steps=1200, lr=6e-3, batch_size=64, warmup=100), vl_methods=("graddiff", "npo", "idkpo"),
    train_variants=6)
