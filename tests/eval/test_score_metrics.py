"""Hand-computed values and edge cases of obliviate.eval.score_metrics (forget quality: scipy's KS test, checked on
lattice-path counts)."""
import math
import zlib

import numpy as np
import pytest
import torch

from obliviate.eval import score_metrics as M


# ---------------------------------------------------------------- TOFU truth ratio and forget quality
def test_truth_ratio_hand_values():
    # paraphrase: log P = −2 over 2 tokens -> −1 per token; perturbed: −3/3 = −1 and −6/2 = −3 per token
    para, pert = torch.tensor([-2.0]), torch.tensor([[-3.0, -6.0]])
    plen, qlen = torch.tensor([2]), torch.tensor([[3, 2]])
    # geometric (TOFU code): exp(mean(−1, −3) − (−1)) = e^−1
    assert M.truth_ratio(para, pert, plen, qlen).item() == pytest.approx(math.exp(-1))
    # arithmetic (paper text): ½(e^−1 + e^−3) / e^−1 = (1 + e^−2)/2
    arith = M.truth_ratio(para, pert, plen, qlen, perturbed_mean="arithmetic").item()
    assert arith == pytest.approx((1 + math.exp(-2)) / 2)
    with pytest.raises(ValueError, match="lengths"):
        M.truth_ratio(para, pert, torch.tensor([0]), qlen)
    with pytest.raises(ValueError, match="expected"):
        M.truth_ratio(para, pert[0], plen, qlen)


def test_truth_ratio_odd_batch_against_loop():
    g = torch.Generator().manual_seed(0)
    para, pert = -torch.rand(37, generator=g) * 20, -torch.rand(37, 5, generator=g) * 20
    plen, qlen = torch.randint(1, 9, (37,), generator=g), torch.randint(1, 9, (37, 5), generator=g)
    got = M.truth_ratio(para, pert, plen, qlen)
    for i in range(37):
        num = math.exp(sum(pert[i, k].item() / qlen[i, k].item() for k in range(5)) / 5)
        assert got[i].item() == pytest.approx(num / math.exp(para[i].item() / plen[i].item()), rel=1e-9)


@pytest.mark.parametrize("x, y, p", [
    ([1, 2, 3], [4, 5, 6], 2 / 20),       # D = 1: only the 2 extreme paths of C(6,3) = 20 reach it
    ([1, 3], [2, 4], 1.0),                # every path of a 2×2 lattice has D ≥ 1/2
    ([1, 2, 4], [3, 5, 6], 12 / 20),      # D = 2/3: 8 of 20 paths keep |i − j| ≤ 1 (pairs xy/yx: 2³)
    ([1, 2], [3, 4, 5], 2 / 10),          # unequal sizes: (2,0) or (0,3) first, 2 of C(5,2) = 10
])
def test_forget_quality_hand_values(x, y, p):
    assert M.ks_forget_quality(x, y) == pytest.approx(p, rel=1e-12)


def test_forget_quality_tiny_p_and_reciprocal():
    # disjoint samples of 50: p = 2 / C(100, 50) = 1.98e-29 (TOFU forget qualities are often this small)
    assert M.ks_forget_quality(np.arange(1, 51), np.arange(100, 150)) == pytest.approx(2 / math.comb(100, 50),
                                                                                     rel=1e-9)
    rng = np.random.default_rng(1)
    x, y = np.exp(rng.normal(0, 1, 37)), np.exp(rng.normal(0.6, 1, 53))
    assert M.ks_forget_quality(1 / x, 1 / y) == pytest.approx(M.ks_forget_quality(x, y), rel=1e-12)  # TOFU: 1/R
    with pytest.raises(ValueError, match="NaN"):
        M.ks_forget_quality([1.0, float("nan")], [2.0])
    with pytest.raises(ValueError, match="non-empty"):
        M.ks_forget_quality([], [2.0])


# ---------------------------------------------------------------- membership inference and AUC
LP = torch.tensor([[-1.0, -5.0, -2.0, -4.0, -3.0], [-0.5, -100.0, -100.0, -100.0, -100.0]])
LM = torch.tensor([[True] * 5, [True, False, False, False, False]])


def test_mia_loss_and_zlib():
    assert M.mia_loss(LP, LM).tolist() == [-3.0, -0.5]  # (−1−5−2−4−3)/5 and −0.5/1
    texts = ["abc abc abc abc abc abc", "a quick brown fox jumps"]
    z = [len(zlib.compress(t.encode("utf-8"))) for t in texts]
    assert M.mia_zlib(LP, LM, texts).tolist() == pytest.approx([-3.0 / z[0], -0.5 / z[1]])
    with pytest.raises(ValueError, match="texts"):
        M.mia_zlib(LP, LM, texts[:1])


def test_mia_min_k():
    # row 0 sorted: −5, −4, −3, −2, −1; k = 0.4 -> ⌊2⌋ = 2 lowest: (−5 − 4)/2; row 1 has one token
    assert M.mia_min_k(LP, LM, k=0.4).tolist() == [-4.5, -0.5]
    assert M.mia_min_k(LP, LM).tolist() == [-5.0, -0.5]         # k = 0.2 -> 1 token
    assert M.mia_min_k(LP, LM, k=0.1).tolist() == [-5.0, -0.5]  # ⌊0.5⌋ = 0 -> at least 1
    assert M.mia_min_k(LP, LM, k=1.0).tolist() == [-3.0, -0.5]  # k = 1 is the LOSS score
    with pytest.raises(ValueError, match="no target token"):
        M.mia_min_k(LP, torch.zeros_like(LM))


def test_mia_min_k_plus_plus():
    lp = torch.tensor([[-1.0, -2.0, 7.0]])
    mu = torch.tensor([[-1.5, -1.0, 0.0]])
    var = torch.tensor([[0.25, 4.0, 1.0]])
    mask = torch.tensor([[True, True, False]])
    # z = ((−1 + 1.5)/0.5, (−2 + 1)/2) = (1, −0.5); k = 0.5 -> 1 lowest = −0.5; k = 1 -> mean 0.25
    assert M.mia_min_k_plus_plus(lp, mu, var, mask, k=0.5).tolist() == [-0.5]
    assert M.mia_min_k_plus_plus(lp, mu, var, mask, k=1.0).tolist() == [0.25]
    # σ² = 0 is floored at MIN_VAR: z = (−1 + 1.5)/1e-3 = 500
    assert M.mia_min_k_plus_plus(lp, mu, torch.zeros(1, 3), mask, k=1.0).item() == pytest.approx(
        (500 + (-1.0) / 1e-3) / 2)


def test_mia_odd_batch_against_loop():
    g = torch.Generator().manual_seed(3)
    lp = -torch.rand(3, 37, generator=g) * 6
    mask = torch.rand(3, 37, generator=g) > 0.4
    got = M.mia_min_k(lp, mask, k=0.3)
    for b in range(3):
        row = sorted(lp[b][mask[b]].tolist())
        n_k = max(1, int(0.3 * len(row) + 1e-9))
        assert got[b].item() == pytest.approx(sum(row[:n_k]) / n_k, rel=1e-9)


def test_auc():
    # pairs: 3>1, 3>2, 2>1, 2=2 (half) -> 3.5/4
    assert M.auc([3, 2], [1, 2]) == pytest.approx(0.875)
    assert M.auc([5, 6], [1, 2, 3]) == 1.0 and M.auc([1], [2, 3]) == 0.0 and M.auc([1, 1], [1]) == 0.5
    rng = np.random.default_rng(4)
    p, q = rng.integers(0, 6, 37).astype(float), rng.integers(0, 6, 23).astype(float)  # many ties
    pairs = np.mean((p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :]))
    assert M.auc(p, q) == pytest.approx(pairs, abs=1e-12)
    assert M.auc(torch.tensor(p), q) == pytest.approx(pairs, abs=1e-12)
    with pytest.raises(ValueError, match="non-empty"):
        M.auc([], [1.0])
