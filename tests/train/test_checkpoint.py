"""Checkpoints: tensors, optimizer, scheduler and RNG come back exactly; only the newest is kept; a half-written one
is never visible under a ckpt-* name."""
import random

import torch

from obliviate.train import checkpoint as ck
from obliviate.train.loop import make_optimizer
from obliviate.train.options import TrainOptions


def test_round_trip_restores_everything(tmp_path):
    p = torch.nn.Parameter(torch.randn(4))
    opt, sched = make_optimizer([p], TrainOptions(steps=10, lr=0.1, warmup=2))
    p.grad = torch.ones(4)
    opt.step()
    sched.step()
    ck.save_checkpoint(tmp_path, 3, {"w": p.detach()}, opt, sched)
    expected = (torch.rand(3), random.random())
    opt2, sched2 = make_optimizer([torch.nn.Parameter(torch.zeros(4))], TrainOptions(steps=10, lr=0.1, warmup=2))
    step, tensors = ck.load_checkpoint(ck.latest_checkpoint(tmp_path), opt2, sched2)
    assert step == 3 and torch.equal(tensors["w"], p.detach())
    assert sched2.get_last_lr() == sched.get_last_lr()
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]  # RNG restored


def test_only_the_newest_is_kept_and_temporaries_are_hidden(tmp_path):
    p = torch.nn.Parameter(torch.zeros(2))
    opt, sched = make_optimizer([p], TrainOptions())
    for step in (2, 4, 6):
        ck.save_checkpoint(tmp_path, step, {"w": p.detach()}, opt, sched)
    assert [d.name for d in tmp_path.iterdir()] == ["ckpt-0000006"]
    (tmp_path / ".tmp-ckpt-0000008.x").mkdir()  # what a kill during a save leaves
    assert ck.latest_checkpoint(tmp_path).name == "ckpt-0000006"
