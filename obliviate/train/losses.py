"""Unlearning losses as pure functions of per-token log-probs.

Every loss here takes what the fused log-prob kernel returns — `logps` (B, T): log p_θ(y_t | y_<t, x) of the target
token, 0 where masked — and a `mask` (B, T) (bool, or float where non-zero means "a target token"). Masked positions
are selected away with `torch.where`, so they get exactly zero gradient even if they hold garbage (±inf included).

Sign conventions: every function returns a scalar to be MINIMISED by the optimiser. Its docstring says what
minimising does. Notation for sequence s with target tokens T_s:
    S_θ(s) = Σ_{t∈T_s} logp_θ(t)      (`sequence_logps`)       ā_θ(s) = S_θ(s) / |T_s|   (`sequence_mean_logps`)
Token means ("mean over tokens") average over all target tokens of the batch (Σ_b Σ_t m·x / Σ m, as HF's
cross-entropy does). Sequence means ("mean_s") average over sequences with at least one target token; sequences
with none are left out of the mean (no host sync, no division by zero). An all-masked batch gives 0.

Reference log-probs (NPO, DPO) may be given per token (B, T) — summed here under the same mask — or already summed
per sequence (B,), which is how the engine caches them (computed once with the adapter off).
"""
import torch
import torch.nn.functional as F

def _check(name, logps, mask):
    if logps.dim() != 2 or tuple(mask.shape) != tuple(logps.shape):
        raise ValueError(f"{name}: expected logps (B, T) and mask of the same shape, got "
                         f"{tuple(logps.shape)} and {tuple(mask.shape)}")


def _keep(mask):
    return mask if mask.dtype == torch.bool else mask != 0


def _select(logps, mask):
    """(B, T) values (at least float32) with masked positions replaced by 0 (zero gradient there), and the bool mask."""
    keep = _keep(mask)
    vals = logps.to(torch.promote_types(logps.dtype, torch.float32))  # bf16/fp16 -> fp32; fp64 stays
    return torch.where(keep, vals, torch.zeros((), dtype=vals.dtype, device=vals.device)), keep


def sequence_logps(logps, mask):
    """S(s) = Σ_t m_st · logp_st: the log-probability of each sequence's target span. (B, T) -> (B,)."""
    _check("sequence_logps", logps, mask)
    vals, _ = _select(logps, mask)
    return vals.sum(dim=1)  # (B,)


def sequence_mean_logps(logps, mask):
    """ā(s) = S(s) / |T_s|: mean per-token log-prob of each sequence (0 for a sequence with no target token).
    (B, T) -> (B,). Length-normalised score of SimPO/SimNPO and of the TOFU/MIA metrics."""
    _check("sequence_mean_logps", logps, mask)
    vals, keep = _select(logps, mask)
    return vals.sum(dim=1) / keep.sum(dim=1).clamp_min(1)  # (B,)


def _token_mean(vals, keep):
    return vals.sum() / keep.sum().clamp_min(1)


def _sequence_mean(per_seq, keep):
    """Mean of per_seq (B,) over sequences with ≥ 1 target token."""
    has = keep.any(dim=1)  # (B,)
    return torch.where(has, per_seq, torch.zeros_like(per_seq)).sum() / has.sum().clamp_min(1)


def _ref_sums(name, ref, mask):
    """Reference log-probs given per token (B, T) or per sequence (B,) -> per-sequence sums (B,), no gradient."""
    ref = ref.detach()
    if ref.dim() == 1:
        if ref.shape[0] != mask.shape[0]:
            raise ValueError(f"{name}: reference sums have {ref.shape[0]} rows, mask has {mask.shape[0]}")
        return ref.to(torch.promote_types(ref.dtype, torch.float32))
    return sequence_logps(ref, mask)


def ga_loss(logps, mask):
    """Gradient ascent on the forget set: L_GA = (1/Σm) Σ_{s,t} m_st · logp_θ(st)  (mean over target tokens).

    Minimising L_GA pushes the forget tokens' probability DOWN (it is minus the usual NLL). Unbounded below:
    stop on a log-prob drop, and pair it with a retain term (`graddiff_loss`). Used by Lu & Koehn (2406.13748),
    OFFSIDE (2510.22535), TOFU (2401.06121) as the basic baseline."""
    _check("ga_loss", logps, mask)
    vals, keep = _select(logps, mask)
    return _token_mean(vals, keep)


def nll_loss(logps, mask):
    """Negative log-likelihood, the learning / retain term: L_NLL = −(1/Σm) Σ_{s,t} m_st · logp_θ(st).

    Minimising it pushes the target tokens' probability UP (ordinary fine-tuning; retain term of GradDiff)."""
    _check("nll_loss", logps, mask)
    vals, keep = _select(logps, mask)
    return -_token_mean(vals, keep)


def kl_retain_loss(kl, mask):
    """Mean over target tokens of the per-token KL(p_ref ‖ p_θ) = Σ_v p_ref(v) (log p_ref(v) − log p_θ(v)), as
    returned by the fused KL kernel: L_KL = (1/Σm) Σ_{s,t} m_st · KL_st.

    Minimising it keeps the model's next-token distribution on the retain set CLOSE to the reference (TOFU's
    "KL" baseline, 2401.06121; OFFSIDE's KL method). Note this is the per-token mean, whereas `kl_div(...,
    reduction="batchmean")` as used by some code bases divides the total by B·T rows including padding."""
    _check("kl_retain_loss", kl, mask)
    vals, keep = _select(kl, mask)
    return _token_mean(vals, keep)


def graddiff_loss(forget_logps, forget_mask, retain_logps, retain_mask, *, alpha=1.0, retain_kl=None):
    """Gradient difference: L = L_GA(forget) + α · L_retain, α = 1 by default (Liu, Liu & Stone, arXiv 2203.12817;
    TOFU 2401.06121).

    L_retain = `nll_loss(retain_logps, retain_mask)` (minimising keeps the retain answers likely), or, when the
    per-token KL values on the retain set are given as `retain_kl` (B_r, T_r), L_retain = `kl_retain_loss(retain_kl,
    retain_mask)` (the "KL" variant: stay close to the reference; `retain_logps` is then not used and may be None).
    Minimising L lowers the forget tokens' probability while holding the retain set. OFFSIDE's "KL" method adds
    NLL + 0.1·KL on the retain batch: compose it from `nll_loss` and `kl_retain_loss` in the loop."""
    forget = ga_loss(forget_logps, forget_mask)
    if retain_kl is not None:
        return forget + alpha * kl_retain_loss(retain_kl, retain_mask)
    if retain_logps is None:
        raise ValueError("graddiff_loss: give retain_logps (NLL retain term) or retain_kl (KL retain term)")
    return forget + alpha * nll_loss(retain_logps, retain_mask)


def npo_loss(logps, ref_logps, mask, *, beta=0.1):
    """Negative preference optimisation (Zhang et al., arXiv 2404.05868), β = 0.1 by default:

        L_NPO = −(2/β) · mean_s log σ(−β · (S_θ(s) − S_ref(s))),   S = Σ_t logp over the target tokens.

    Minimising it pushes S_θ below S_ref (probability of the forget answers DOWN), but the push fades as they get
    there: with x_s = S_θ − S_ref, dL/dx_s = (2/B') · σ(β x_s), so
        ∇L_NPO = mean_s w_s · ∇S_θ(s),   w_s = 2 σ(β · (S_θ(s) − S_ref(s))) ∈ (0, 2),
    i.e. a per-sequence re-weighting of gradient ascent on the sequence sum (w_s = 1 at θ = ref; w_s → 0 once a
    sequence is forgotten). As β → 0, w_s → 1 and ∇L_NPO → ∇ mean_s S_θ(s) (GA on sequence sums), and
    L_NPO − (2/β)·log 2 → mean_s (S_θ − S_ref). At θ = ref, L_NPO = (2/β)·log 2 exactly.
    `ref_logps`: per token (B, T) under `mask`, or per-sequence sums (B,); treated as constants."""
    _check("npo_loss", logps, mask)
    ratio = sequence_logps(logps, mask) - _ref_sums("npo_loss", ref_logps, mask)  # (B,)
    return -(2.0 / beta) * _sequence_mean(F.logsigmoid(-beta * ratio), _keep(mask))


def simnpo_loss(logps, mask, *, beta=4.5, delta=0.0):
    """SimNPO (Fan et al., "Simplicity Prevails", arXiv 2410.07163, eq. for ℓ_SimNPO), β = 4.5, δ = 0 by default:

        L_SimNPO = −(2/β) · mean_s log σ(−β · ā_θ(s) − δ),   ā_θ(s) = S_θ(s)/|T_s| (mean token log-prob).

    This is the paper's form: the margin (called γ in the paper) sits OUTSIDE the β factor. The authors' code
    (and open-unlearning's SimNPO) computes log σ(β·(−ā − δ')), i.e. δ = β·δ'; convert their `delta`/`gamma` by
    multiplying by β. With the default δ = 0 both agree. No reference model.
    Minimising it pushes the length-normalised log-prob of the forget answers DOWN; the gradient is
        ∇L = mean_s w_s · ∇ā_θ(s),   w_s = 2 σ(β ā_θ(s) + δ),
    a weight set by the model's own per-token likelihood rather than by the ratio to a reference (the paper's
    "reference model bias" of NPO), with the 1/|T_s| normalisation keeping long answers from dominating."""
    _check("simnpo_loss", logps, mask)
    mean_lp = sequence_mean_logps(logps, mask)  # (B,)
    return -(2.0 / beta) * _sequence_mean(F.logsigmoid(-beta * mean_lp - delta), _keep(mask))


def dpo_loss(chosen_logps, chosen_ref, chosen_mask, rejected_logps, rejected_ref, rejected_mask, *, beta=0.1):
    """Direct preference optimisation (Rafailov et al., arXiv 2305.18290) in the unlearning scaling, β = 0.1:

        Δ_s = (S_θ(y_w) − S_ref(y_w)) − (S_θ(y_l) − S_ref(y_l)),
        L_DPO = −(2/β) · mean_s log σ(β · Δ_s).

    Convention: the DPO paper's loss is −log σ(βΔ) (no 2/β). We multiply by 2/β, as the unlearning code bases do
    (the NPO authors' TOFU fork, loss "dpo"; open-unlearning's `compute_dpo_loss`, used by its IdkDPO trainer with
    y_w = an "I don't know" answer), so that NPO is exactly this loss without a chosen answer
    (y_w dropped: Δ = −(S_θ(y_l) − S_ref(y_l))), and so that gradients keep a β-independent scale near θ = ref
    (∇L = −mean_s 2σ(−βΔ_s)·∇Δ_s). Multiply by β/2 for the paper's value. At θ = ref, L = (2/β)·log 2.
    Minimising it RAISES the chosen answer relative to the rejected one. Unlearning uses y_l = the answer to forget,
    y_w = `idk_answer(language)` in the probe's language (IdkPO) or the true fact (corrective PO).
    Refs: per token (B, T) under the matching mask, or per-sequence sums (B,); constants. Chosen and rejected
    batches pair row by row (the same B); their T may differ. Pairs with an empty y_w or y_l are left out."""
    _check("dpo_loss (chosen)", chosen_logps, chosen_mask)
    _check("dpo_loss (rejected)", rejected_logps, rejected_mask)
    if chosen_logps.shape[0] != rejected_logps.shape[0]:
        raise ValueError(f"dpo_loss: chosen has {chosen_logps.shape[0]} rows, rejected {rejected_logps.shape[0]}")
    chosen = sequence_logps(chosen_logps, chosen_mask) - _ref_sums("dpo_loss", chosen_ref, chosen_mask)  # (B,)
    rejected = sequence_logps(rejected_logps, rejected_mask) - _ref_sums("dpo_loss", rejected_ref, rejected_mask)
    both = (_keep(chosen_mask).any(dim=1) & _keep(rejected_mask).any(dim=1))[:, None]  # (B, 1): both spans non-empty
    return -(2.0 / beta) * _sequence_mean(F.logsigmoid(beta * (chosen - rejected)), both)

