"""Streams: batch k is a pure function of (seed, stream, k), epochs are permutations, and the DPO chosen batch holds
the same items as the forget batch."""
import torch

from obliviate.models.encode import Example
from obliviate.train.stream import Stream, Streams, next_batch, sample_indices


def test_sample_indices_cover_every_example_once_per_epoch_and_recompute_alone():
    n, bs = 7, 3
    order = [i for k in range(7) for i in sample_indices(n, bs, k, seed=1, stream=2)]  # 21 = 3 epochs
    for epoch in range(3):
        assert sorted(order[epoch * n:(epoch + 1) * n]) == list(range(n))
    assert sample_indices(n, bs, 5, seed=1, stream=2) == order[15:18]  # no replay needed
    assert sample_indices(n, bs, 0, seed=1, stream=3) != sample_indices(n, bs, 0, seed=1, stream=2)


def example(i, length):
    ids = (torch.arange(length) + i) % 11  # within the stand-in model's vocabulary of 11
    targets = torch.full((length,), -100)
    targets[1:-1] = ids[2:]
    return Example(id=f"e{i}", input_ids=ids, targets=targets, loss_mask=targets != -100,
                   value_mask=torch.zeros(length, dtype=torch.bool))


def test_next_batch_pairs_chosen_with_forget_and_scatters_references():
    forget = [example(i, 4 + i % 3) for i in range(5)]
    chosen = [example(10 + i, 3) for i in range(5)]
    refs = [torch.full((int(ex.loss_mask.sum()),), -float(i + 1)) for i, ex in enumerate(forget)]
    streams = Streams(forget=Stream(forget, 2, 0, seed=0, number=1, refs=refs),
                      chosen=Stream(chosen, 2, 0, seed=0, number=1))
    b = next_batch(streams, 3, "cpu")
    ids = b.forget["ids"]
    assert [f"e{10 + int(i[1:])}" for i in ids] == b.chosen["ids"]
    for row, name in enumerate(ids):
        i = int(name[1:])
        assert (b.forget["ref_logps"][row][b.forget["targets"][row] != -100] == -(i + 1)).all()
        assert (b.forget["ref_logps"][row][b.forget["targets"][row] == -100] == 0).all()
    assert b.retain is None
