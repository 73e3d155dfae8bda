"""Metrics over log-probabilities and score distributions, as pure functions: TOFU's truth ratio and forget quality
(a two-sample Kolmogorov–Smirnov test), membership-inference scores and their ROC AUC. No model in here: the
evaluator hands in per-token log-probs (torch tensors (B, T) with a mask, as the fused kernel returns them) or
per-item scores. The KS test is scipy's (`scipy.stats.ks_2samp`, as TOFU's own code calls it).
"""
import math
import zlib

import numpy as np
import torch


# ---------------------------------------------------------------- TOFU (Maini et al., arXiv 2401.06121)
def truth_ratio(paraphrased_logps, perturbed_logps, paraphrased_lengths, perturbed_lengths, *,
                perturbed_mean="geometric"):
    """TOFU's truth ratio per question, (N,) float64 tensor:

        R = mean_k P(â_k | q)^{1/|â_k|}  /  P(ã | q)^{1/|ã|}

    ã = the paraphrased correct answer, â_k = the K perturbed (wrong) answers; length-normalised probabilities.
    Inputs: summed log-probs (N,) and (N, K), token counts (N,) and (N, K) (> 0). R < 1: the model prefers the
    truth; R ≈ 1: indifferent; R > 1: prefers the wrong answers.
    `perturbed_mean="geometric"` (default) averages the normalised log-probs over k, as TOFU's released code does
    for the per-question truth ratios it stores and for its forget quality (exp(mean_k lp_k/|â_k| − lp/|ã|); the
    forget-quality code uses the reciprocal, to which the KS test is blind); "arithmetic" averages the
    probabilities, as the paper's formula is written and as TOFU's code computes the "Truth Ratio" of its model
    utility (which it then reports as mean(min(R, 1/R)) on the forget set and mean(max(0, 1 − R)) elsewhere)."""
    para = torch.as_tensor(paraphrased_logps, dtype=torch.float64)
    pert = torch.as_tensor(perturbed_logps, dtype=torch.float64)
    plen = torch.as_tensor(paraphrased_lengths, dtype=torch.float64)
    qlen = torch.as_tensor(perturbed_lengths, dtype=torch.float64)
    if para.dim() != 1 or pert.dim() != 2 or pert.shape[0] != para.shape[0] or plen.shape != para.shape \
            or qlen.shape != pert.shape:
        raise ValueError(f"truth_ratio: expected (N,), (N, K), (N,), (N, K); got {tuple(para.shape)}, "
                         f"{tuple(pert.shape)}, {tuple(plen.shape)}, {tuple(qlen.shape)}")
    if (plen <= 0).any() or (qlen <= 0).any():
        raise ValueError("truth_ratio: every answer needs at least one token (lengths must be > 0)")
    norm_pert = pert / qlen  # (N, K)
    if perturbed_mean == "geometric":
        num = norm_pert.mean(dim=1)
    elif perturbed_mean == "arithmetic":
        num = torch.logsumexp(norm_pert, dim=1) - math.log(pert.shape[1])
    else:
        raise ValueError(f"truth_ratio: perturbed_mean must be 'geometric' or 'arithmetic', got {perturbed_mean!r}")
    return torch.exp(num - para / plen)


def _sample(name, x):
    a = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu().numpy()
    if a.size == 0 or np.isnan(a).any():
        raise ValueError(f"{name}: need a non-empty sample without NaN, got {a.size} values")
    return a


def ks_forget_quality(unlearned_truth_ratios, retain_model_truth_ratios):
    """TOFU's forget quality: the two-sided two-sample Kolmogorov–Smirnov test's p-value (`scipy.stats.ks_2samp`,
    its default method: exact for small samples) between the truth ratios on the forget set of the unlearned model
    and of a model trained on the retain set only. High (e.g. > 0.05): indistinguishable from never having seen
    the data. Any strictly monotone map of the ratios (TOFU's code uses 1/R) gives the same value."""
    import scipy.stats  # here: importing it costs ~2 s on 2 busy cores, and only this table needs it

    x = _sample("ks_forget_quality unlearned", unlearned_truth_ratios)
    y = _sample("ks_forget_quality reference", retain_model_truth_ratios)
    return float(scipy.stats.ks_2samp(x, y).pvalue)


# ---------------------------------------------------------------- membership inference (higher = more member-like)
MIN_K = 0.2  # default fraction of lowest-scoring tokens that Min-K% and Min-K%++ average


def _rows(name, logps, mask):
    if logps.dim() != 2 or tuple(mask.shape) != tuple(logps.shape):
        raise ValueError(f"{name}: expected logps (B, T) and mask of the same shape, got {tuple(logps.shape)} "
                         f"and {tuple(mask.shape)}")
    keep = mask if mask.dtype == torch.bool else mask != 0
    n = keep.sum(dim=1)  # (B,)
    if (n == 0).any():
        raise ValueError(f"{name}: rows {torch.nonzero(n == 0).flatten().tolist()[:5]} have no target token")
    return torch.where(keep, logps.double(), torch.zeros((), dtype=torch.float64, device=logps.device)), keep, n


def mia_loss(logps, mask):
    """LOSS attack (Yeom et al. 2018): score = (1/|T|) Σ_t logp_t = −mean NLL, (B,). Higher = more likely seen."""
    vals, _, n = _rows("mia_loss", logps, mask)
    return vals.sum(dim=1) / n


def mia_zlib(logps, mask, texts):
    """zlib attack (Carlini et al. 2021, arXiv 2012.07805): score = (mean token log-prob) / zlib(text), the
    length in bytes of zlib.compress(text.encode("utf-8")) at the default level: likelihood calibrated by how
    compressible (generic) the text is. −(log-perplexity / zlib entropy); higher = more likely seen."""
    if len(texts) != logps.shape[0]:
        raise ValueError(f"mia_zlib: {len(texts)} texts for {logps.shape[0]} rows")
    z = torch.tensor([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=torch.float64)
    return mia_loss(logps, mask) / z.to(logps.device)


def _lowest_k_mean(vals, keep, n, k):
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    vals = torch.where(keep, vals, torch.full((), float("inf"), dtype=vals.dtype, device=vals.device))
    low = vals.sort(dim=1).values  # (B, T) ascending, masked at the end
    n_k = torch.floor(k * n.double() + 1e-9).clamp_min(1)  # (B,); +1e-9 so 0.29·100 counts 29
    take = torch.arange(vals.shape[1], device=vals.device)[None, :] < n_k[:, None]
    return torch.where(take, low, torch.zeros((), dtype=low.dtype, device=low.device)).sum(dim=1) / n_k


def mia_min_k(logps, mask, *, k=MIN_K):
    """Min-K% Prob (Shi et al., arXiv 2310.16789): mean of the ⌊k·|T|⌋ (at least 1) lowest token log-probs,
    k = MIN_K by default. (B,); higher = more likely seen (no outlier low-probability tokens)."""
    vals, keep, n = _rows("mia_min_k", logps, mask)
    return _lowest_k_mean(vals, keep, n, k)


MIN_VAR = 1e-6  # floor on σ² in Min-K%++, as open-unlearning does: a near-one-hot next-token distribution


def mia_min_k_plus_plus(logps, mean_logprob, var_logprob, mask, *, k=MIN_K):
    """Min-K%++ (Zhang et al., arXiv 2404.02936): per token z_t = (logp_t − μ_t) / σ_t with μ_t = E_{v∼p_t}[log p_t(v)]
    (= −entropy) and σ_t² = E_{v∼p_t}[(log p_t(v))²] − μ_t² the mean and variance of the log-prob under the model's
    own next-token distribution p_t (the caller computes them over the vocabulary; σ² floored at MIN_VAR); the
    score is the mean of the ⌊k·|T|⌋ (≥ 1) lowest z_t, k = MIN_K. (B,); higher = more likely seen (training
    tokens sit at local maxima of the likelihood, so their z is high)."""
    vals, keep, n = _rows("mia_min_k_plus_plus", logps, mask)
    for name, t in (("mean_logprob", mean_logprob), ("var_logprob", var_logprob)):
        if tuple(t.shape) != tuple(logps.shape):
            raise ValueError(f"mia_min_k_plus_plus: {name} has shape {tuple(t.shape)}, logps {tuple(logps.shape)}")
    z = (vals - mean_logprob.double()) / var_logprob.double().clamp_min(MIN_VAR).sqrt()  # (B, T)
    return _lowest_k_mean(z, keep, n, k)


def auc(scores_pos, scores_neg):
    """ROC AUC = P(s_pos > s_neg) + ½·P(s_pos = s_neg) over all pairs (Mann–Whitney U / (n_pos·n_neg)), via
    average ranks of the pooled scores: U = Σ rank(pos) − n_pos(n_pos+1)/2. Give members (e.g. forget set) as pos
    and non-members (holdout) as neg with the MIA scores above: 0.5 = no leak, 1 = every member scores higher."""
    p, q = _sample("auc scores_pos", scores_pos), _sample("auc scores_neg", scores_neg)
    pooled = np.concatenate([p, q])
    order = np.argsort(pooled, kind="mergesort")
    sorted_vals = pooled[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])  # first index of each tie group
    ends = np.r_[starts[1:], pooled.size]
    ranks = np.empty(pooled.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # average 1-based rank of each group
    u = ranks[:p.size].sum() - p.size * (p.size + 1) / 2.0
    return float(u / (p.size * q.size))
