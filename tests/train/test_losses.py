"""Hand-computed values, signs, masks and limits of obliviate.train.losses."""
import math

import pytest
import torch
import torch.nn.functional as F

from obliviate.train import losses as L


def logsig(x):  # log σ(x) of a Python float, the hand arithmetic below
    return -math.log1p(math.exp(-x))


# Two sequences: s0 has target tokens −1, −2 (third position masked); s1 has −0.5 only.
LOGPS = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)


def test_sequence_sums_and_means():
    # sums: −1 − 2 = −3 and −0.5; means: −3/2 and −0.5/1
    assert L.sequence_logps(LOGPS, MASK).tolist() == [-3.0, -0.5]
    assert L.sequence_mean_logps(LOGPS, MASK).tolist() == [-1.5, -0.5]


def test_ga_nll_kl_hand_values():
    # token mean over the 3 target tokens: (−1 − 2 − 0.5)/3 = −7/6
    assert L.ga_loss(LOGPS, MASK).item() == pytest.approx(-7 / 6)
    assert L.nll_loss(LOGPS, MASK).item() == pytest.approx(7 / 6)
    kl = torch.tensor([[0.2, 0.4, 9.0], [0.3, 7.0, 7.0]])  # masked 9, 7, 7 must not count
    assert L.kl_retain_loss(kl, MASK).item() == pytest.approx((0.2 + 0.4 + 0.3) / 3)


def test_graddiff_hand_values():
    retain = torch.tensor([[-0.1, -0.3]])
    rmask = torch.ones(1, 2, dtype=torch.bool)
    # GA(forget) = −7/6; NLL(retain) = (0.1 + 0.3)/2 = 0.2; α = 0.5 -> −7/6 + 0.1
    assert L.graddiff_loss(LOGPS, MASK, retain, rmask, alpha=0.5).item() == pytest.approx(-7 / 6 + 0.1)
    # default α = 1
    assert L.graddiff_loss(LOGPS, MASK, retain, rmask).item() == pytest.approx(-7 / 6 + 0.2)
    # KL variant: per-token KL mean (0.2 + 0.4)/2 = 0.3; retain log-probs unused
    kl = torch.tensor([[0.2, 0.4]])
    assert L.graddiff_loss(LOGPS, MASK, None, rmask, alpha=0.5, retain_kl=kl).item() == pytest.approx(-7 / 6 + 0.15)
    with pytest.raises(ValueError, match="retain_logps"):
        L.graddiff_loss(LOGPS, MASK, None, rmask)


def test_npo_hand_value():
    ref = torch.tensor([-2.0, -1.5])  # per-sequence sums
    # x = S_θ − S_ref = (−3 + 2, −0.5 + 1.5) = (−1, 1); β = 0.1:
    # L = −(2/0.1) · ½ (log σ(0.1) + log σ(−0.1)) = −10 · (−0.644397 − 0.744397) = 13.887933
    expected = -20 * 0.5 * (logsig(0.1) + logsig(-0.1))
    assert expected == pytest.approx(13.887933, abs=1e-6)
    assert L.npo_loss(LOGPS, ref, MASK).item() == pytest.approx(expected, rel=1e-6)
    # the same reference given per token (B, T) under the mask
    ref_tok = torch.tensor([[-1.5, -0.5, 123.0], [-1.5, 5.0, 5.0]])
    assert L.npo_loss(LOGPS, ref_tok, MASK).item() == pytest.approx(expected, rel=1e-6)
    # β = 1: −(2/1)·½(log σ(1) + log σ(−1)) = 0.313262 + 1.313262 = 1.626523
    assert L.npo_loss(LOGPS, ref, MASK, beta=1.0).item() == pytest.approx(1.626523, abs=1e-5)


@pytest.mark.parametrize("beta", [0.1, 0.9, 2.0])
def test_npo_at_reference_is_2_over_beta_log2(beta):
    lp = -torch.rand(3, 37) * 4
    mask = torch.rand(3, 37) > 0.3
    ref = L.sequence_logps(lp, mask)
    assert L.npo_loss(lp, ref, mask, beta=beta).item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_simnpo_hand_values_and_delta_placement():
    # ā = (−1.5, −0.5); β = 4.5, δ = 0: L = −(2/4.5)·½(log σ(6.75) + log σ(2.25))
    #   log σ(6.75) = −0.001170, log σ(2.25) = −0.100207 -> L = 0.022528
    expected = -(2 / 4.5) * 0.5 * (logsig(6.75) + logsig(2.25))
    assert expected == pytest.approx(0.022528, abs=1e-6)
    assert L.simnpo_loss(LOGPS, MASK).item() == pytest.approx(expected, rel=1e-5)
    # δ = 1 sits outside β (paper form): log σ(−β·ā − δ) = log σ(6.75 − 1), log σ(2.25 − 1)
    expected_d = -(2 / 4.5) * 0.5 * (logsig(5.75) + logsig(1.25))
    assert L.simnpo_loss(LOGPS, MASK, delta=1.0).item() == pytest.approx(expected_d, rel=1e-5)
    # the authors' code form log σ(β(−ā − δ')) equals ours with δ = β·δ'
    code_form = -(2 / 2.0) * 0.5 * (logsig(2.0 * (1.5 - 0.3)) + logsig(2.0 * (0.5 - 0.3)))
    assert L.simnpo_loss(LOGPS, MASK, beta=2.0, delta=2.0 * 0.3).item() == pytest.approx(code_form, rel=1e-5)


def test_dpo_hand_value_and_paper_scaling():
    cl, cr = torch.tensor([[-1.5, -0.5]]), torch.tensor([-3.0])  # chosen: S = −2, S_ref = −3 -> +1
    rl, rr = torch.tensor([[-1.0, 0.0, 0.0]]), torch.tensor([-1.5])  # rejected: S = −1, S_ref = −1.5 -> +0.5
    cm, rm = torch.ones(1, 2, dtype=torch.bool), torch.tensor([[True, False, False]])
    # Δ = 1 − 0.5 = 0.5; β = 0.1: L = −(2/0.1)·log σ(0.05) = 20 · 0.668460 = 13.369193
    loss = L.dpo_loss(cl, cr, cm, rl, rr, rm)
    assert loss.item() == pytest.approx(-20 * logsig(0.05), rel=1e-6)
    assert loss.item() == pytest.approx(13.369193, abs=1e-5)
    # × β/2 = the DPO paper's −log σ(βΔ)
    assert (loss * 0.1 / 2).item() == pytest.approx(-logsig(0.05), rel=1e-6)
    # at θ = ref: (2/β)·log 2
    at_ref = L.dpo_loss(cl, torch.tensor([-2.0]), cm, rl, torch.tensor([-1.0]), rm, beta=0.5)
    assert at_ref.item() == pytest.approx(4 * math.log(2), rel=1e-6)


def test_npo_is_dpo_without_a_chosen_answer():
    torch.manual_seed(0)
    lp, mask = -torch.rand(3, 37) * 3, torch.rand(3, 37) > 0.2
    ref = L.sequence_logps(-torch.rand(3, 37) * 3, mask)
    zero_chosen = torch.zeros(3, 1)  # S_θ(y_w) = S_ref(y_w) = 0: the chosen term vanishes
    dpo = L.dpo_loss(zero_chosen, torch.zeros(3), torch.ones(3, 1, dtype=torch.bool), lp, ref, mask, beta=0.3)
    assert dpo.item() == pytest.approx(L.npo_loss(lp, ref, mask, beta=0.3).item(), rel=1e-6)


def _naive(fn, lp, mask):
    """Per-row Python loop reference for the sequence losses."""
    rows = [lp[b][mask[b]] for b in range(lp.shape[0]) if mask[b].any()]
    return torch.stack([fn(r) for r in rows]).mean()


def test_odd_batch_3x37_against_loop():
    torch.manual_seed(1)
    lp = -torch.rand(3, 37, dtype=torch.float64) * 5
    mask = torch.rand(3, 37) > 0.4
    ref_tok = -torch.rand(3, 37, dtype=torch.float64) * 5
    ref = [ref_tok[b][mask[b]].sum() for b in range(3)]
    all_tok = torch.cat([lp[b][mask[b]] for b in range(3)])
    assert L.ga_loss(lp, mask).item() == pytest.approx(all_tok.mean().item(), rel=1e-6)
    beta = 0.1
    want = torch.stack([-(2 / beta) * F.logsigmoid(-beta * (lp[b][mask[b]].sum() - ref[b])) for b in range(3)]).mean()
    assert L.npo_loss(lp, ref_tok, mask).item() == pytest.approx(want.item(), rel=1e-6)
    want = _naive(lambda r: -(2 / 4.5) * F.logsigmoid(-4.5 * r.mean() - 0.25), lp, mask)
    assert L.simnpo_loss(lp, mask, delta=0.25).item() == pytest.approx(want.item(), rel=1e-6)


def test_masks_respected_zero_gradient_and_garbage_ignored():
    torch.manual_seed(2)
    clean = -torch.rand(3, 37) * 3
    mask = torch.rand(3, 37) > 0.5
    dirty = torch.where(mask, clean, torch.full_like(clean, -float("inf")))  # garbage where masked
    ref = L.sequence_logps(-torch.rand(3, 37) * 3, mask)
    fns = {
        "ga": lambda x: L.ga_loss(x, mask),
        "nll": lambda x: L.nll_loss(x, mask),
        "kl": lambda x: L.kl_retain_loss(-x, mask),
        "npo": lambda x: L.npo_loss(x, ref, mask),
        "simnpo": lambda x: L.simnpo_loss(x, mask),
        "dpo": lambda x: L.dpo_loss(x, ref, mask, clean.flip(0), ref.flip(0), mask.flip(0)),
    }
    for name, fn in fns.items():
        x = dirty.clone().requires_grad_(True)
        loss = fn(x)
        assert torch.isfinite(loss), name
        assert loss.item() == pytest.approx(fn(clean).item(), rel=1e-6), name
        loss.backward()
        assert torch.all(x.grad[~mask] == 0), name
        assert torch.all(x.grad[mask] != 0), name
    # a float mask means the same as the bool mask
    assert L.npo_loss(clean, ref, mask.float()).item() == pytest.approx(L.npo_loss(clean, ref, mask).item())


def test_sequences_without_target_tokens_are_left_out():
    lp = torch.tensor([[-1.0, -2.0], [0.0, 0.0]])
    mask = torch.tensor([[True, True], [False, False]])
    ref = torch.tensor([-2.0, 0.0])
    # only s0 counts: x = −3 + 2 = −1 -> −20·log σ(0.1)
    assert L.npo_loss(lp, ref, mask).item() == pytest.approx(-20 * logsig(0.1), rel=1e-6)
    assert L.simnpo_loss(lp, mask).item() == pytest.approx(-(2 / 4.5) * logsig(6.75), rel=1e-5)
    empty = torch.zeros(2, 2, dtype=torch.bool)
    assert L.ga_loss(lp, empty).item() == 0.0 and L.npo_loss(lp, ref, empty).item() == 0.0


def _policy(seed, B=3, T=37, V=11):
    """A "learned" toy policy: free logits (B, T, V) with the targets already likely (logp ≈ −0.1)."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, V, (B, T), generator=g)
    logits = torch.randn(B, T, V, generator=g) + 6 * F.one_hot(targets, V)
    mask = torch.rand(B, T, generator=g) > 0.3
    return logits.requires_grad_(True), targets, mask


def _tok_logps(logits, targets):
    return logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]  # (B, T)


def _sgd_step(logits, loss, lr):
    loss.backward()
    with torch.no_grad():
        return logits - lr * logits.grad


@pytest.mark.parametrize("method", ["ga", "npo", "simnpo"])
def test_a_gradient_step_lowers_forget_logps(method):
    logits, targets, mask = _policy(3)
    lp = _tok_logps(logits, targets)
    ref = L.sequence_logps(lp.detach(), mask)
    loss = {"ga": lambda: L.ga_loss(lp, mask), "npo": lambda: L.npo_loss(lp, ref, mask),
            "simnpo": lambda: L.simnpo_loss(lp, mask)}[method]()
    new = _sgd_step(logits, loss, lr=0.5)
    before = L.sequence_logps(lp.detach(), mask)
    after = L.sequence_logps(_tok_logps(new, targets), mask)
    assert torch.all(after < before), (before, after)


def test_a_gradient_step_on_nll_raises_logps():
    logits, targets, mask = _policy(4)
    lp = _tok_logps(logits, targets)
    new = _sgd_step(logits, L.nll_loss(lp, mask), lr=0.5)
    assert torch.all(L.sequence_logps(_tok_logps(new, targets), mask) > L.sequence_logps(lp.detach(), mask))


def test_a_gradient_step_on_dpo_raises_chosen_over_rejected():
    logits, targets, mask = _policy(5)
    rejected_targets = (targets + 1) % logits.shape[-1]  # another answer on the same positions
    lp_w, lp_l = _tok_logps(logits, targets), _tok_logps(logits, rejected_targets)
    ref_w, ref_l = L.sequence_logps(lp_w.detach(), mask), L.sequence_logps(lp_l.detach(), mask)
    new = _sgd_step(logits, L.dpo_loss(lp_w, ref_w, mask, lp_l, ref_l, mask), lr=0.05)
    margin_before = ref_w - ref_l
    margin_after = L.sequence_logps(_tok_logps(new, targets), mask) - L.sequence_logps(
        _tok_logps(new, rejected_targets), mask)
    assert torch.all(margin_after > margin_before)


def test_npo_gradient_is_weighted_ga_and_tends_to_ga_for_small_beta():
    torch.manual_seed(6)
    lp = (-torch.rand(3, 37, dtype=torch.float64) * 2).requires_grad_(True)
    mask = torch.rand(3, 37) > 0.3
    ref = L.sequence_logps(-torch.rand(3, 37, dtype=torch.float64) * 2, mask)
    x = (L.sequence_logps(lp, mask) - ref).detach()  # (3,)
    for beta in (0.1, 1.0):
        lp.grad = None
        L.npo_loss(lp, ref, mask, beta=beta).backward()
        w = 2 * torch.sigmoid(beta * x)  # ∇L = mean_s w_s ∇S_θ(s): dL/dlogp_st = w_s / B · m_st
        assert torch.allclose(lp.grad, (w / 3)[:, None] * mask, atol=1e-12)
    lp.grad = None
    # β -> 0: w_s = 2σ(βx_s) = 1 + βx_s/2 + O(β²) -> 1: GA on sequence sums, weight 1/B per target token
    L.npo_loss(lp, ref, mask, beta=1e-6).backward()
    assert torch.allclose(lp.grad, mask.double() / 3, atol=1e-5)
    # and the value: L − (2/β) log 2 = mean_s (x_s + βx_s²/4 + ...) -> mean_s (S_θ − S_ref)
    v = L.npo_loss(lp, ref, mask, beta=1e-6).item() - 2e6 * math.log(2)
    assert v == pytest.approx(x.mean().item(), abs=1e-4)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        L.ga_loss(LOGPS, MASK[:, :2])
    with pytest.raises(ValueError, match="rows"):
        L.npo_loss(LOGPS, torch.zeros(3), MASK)
    with pytest.raises(ValueError, match="rows"):
        L.dpo_loss(LOGPS, torch.zeros(2), MASK, LOGPS[:1], torch.zeros(1), MASK[:1])
