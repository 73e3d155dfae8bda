"""Evaluation metrics as pure functions (DESIGN.md §6): text matching, multiple choice, ROUGE/BLEU, TOFU's truth
ratio and forget quality, membership-inference scores and AUC, fake-rate vs truth-rate. No model in here: the
engine hands in generations (str) or per-token log-probs (torch tensors (B, T) with a mask, as the fused kernel
returns them). Only the standard library, numpy and torch are used (no scipy, rouge-score or sacrebleu).

Text is compared after `normalize` and split by `tokens`, which is script-aware: every CJK ideograph or kana is a
token of its own (Chinese and Japanese are written without spaces), any other run of letters/digits between
spaces is a word. So ROUGE/BLEU/containment are character-level for zh/ja and word-level elsewhere, also in
mixed text such as "梅西效力于Barcelona".
"""
import math
import re
import unicodedata
import zlib

import numpy as np
import torch

_CJK = ("\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
        "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff")
_CJK_CHAR = re.compile(f"([{_CJK}])")
_ARABIC_SCRIPT = {"ur", "ar", "fa", "ps", "sd", "ug"}
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")  # harakat, small marks, tatweel
_PERSO_URDU_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})  # ي ى ك -> ی ی ک


def _char_map(ch):
    cat = unicodedata.category(ch)
    if cat[0] == "P":            # any Unicode punctuation: ASCII, 。，、, Urdu ۔ ، , Armenian ։ ՝ ՞ ...
        return " "
    if cat == "Cf":              # format characters: zero-width space/joiners, soft hyphen, BOM
        return ""
    if cat == "Nd":              # any decimal digit (Arabic-Indic ۱۲, Devanagari ...) -> ASCII digit
        return str(unicodedata.digit(ch))
    return ch


def normalize(text, language):
    """Canonical form for matching: NFKC (full-width forms -> ASCII, ligatures such as Armenian "և" -> "եւ"),
    Unicode case folding (lowercase, plus ß -> ss and final-sigma folding), every punctuation character (Unicode
    category P*) -> space, format characters (Cf: zero-width joiners, soft hyphen) dropped, every decimal digit ->
    its ASCII digit, whitespace collapsed and stripped. Symbols (currency, math: category S*) are kept.
    For Arabic-script languages (ur, ar, fa, ps, sd, ug) the optional vowel marks (harakat), Quranic small marks and
    the tatweel are dropped; for Urdu and Persian the Arabic letters ي ى ك are mapped to their Perso-Urdu forms
    ی ک (models mix both). Same idea as SQuAD/TOFU normalisation (lowercase, strip punctuation, collapse spaces),
    made Unicode-aware."""
    if not isinstance(text, str) or not isinstance(language, str):
        raise TypeError(f"normalize: expected (str, str), got ({type(text).__name__}, {type(language).__name__})")
    lang = language.strip().lower().replace("_", "-").split("-")[0]
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if lang in _ARABIC_SCRIPT:
        s = _ARABIC_MARKS.sub("", s)
        if lang in ("ur", "fa"):
            s = s.translate(_PERSO_URDU_LETTERS)
    s = "".join(_char_map(ch) for ch in s)
    return " ".join(s.split())


def tokens(text, language):
    """Script-aware tokens of `normalize(text, language)`: each CJK ideograph / kana alone (whitespace between them
    is ignored), other text split on whitespace. "梅西 效力" -> ['梅','西','效','力']; "Ես չգիտեմ" -> 2 words."""
    return _CJK_CHAR.sub(r" \1 ", normalize(text, language)).split()


def exact_match(pred, ref, language):
    """1.0 if the normalised token sequences are equal, else 0.0 (two empty strings match)."""
    return float(tokens(pred, language) == tokens(ref, language))


def _bounded(toks):
    return " " + " ".join(toks)


def contains(pred, ref, language):
    """1.0 if the normalised reference occurs in the normalised prediction starting at a token boundary, else 0.0.

    CJK text is compared character by character (spaces ignored). Elsewhere the reference must start at a word
    start but may end inside a word, so inflected forms count ("Арсенала" contains "Арсенал", Armenian
    "Արսենալում" contains "Արսենալ") — at the price that "Romania" contains "Roma". A reference that is empty
    after normalisation -> ValueError (it would be contained in everything)."""
    r = tokens(ref, language)
    if not r:
        raise ValueError(f"contains: reference {ref!r} is empty after normalisation")
    return float(_bounded(r) in _bounded(tokens(pred, language)))


# ---------------------------------------------------------------- multiple choice (OFFSIDE, arXiv 2510.22535)
_ANSWER_IS = re.compile(r"(?i:the\s+answer\s+is)\s*:?\s*[(\[*\"']*\s*([A-D])(?![A-Za-z0-9])")
_LONE = re.compile(r"^[(\[*\"'\s]*([A-D])[)\]*\"'.:,!\s]*$")
_LABEL = re.compile(r"^[*\s]*(?:\(([A-D])\)|([A-D])[.):])(?:\s|$)")


def parse_choice(text):
    """The option letter a generation picks, or None. Rules, in order (OFFSIDE's parser, made precise):
    1. the first "The answer is X" (phrase case-insensitive; optional ":" and opening "(", "[", "*", quotes before
       X) where X is an UPPERCASE A–D not followed by a letter or digit ("The answer is Arsenal" does not count);
    2. else a lone letter: the first non-empty line is just an uppercase A–D, possibly wrapped in ( ) [ ] ** or
       quotes and followed by . : , ! ("B", "(C)", "**D**", "A."), or the text starts with an option label
       "X." "X)" "(X)" "X:" followed by whitespace or the end ("B. Arsenal").
    A letter used as a word ("A player from Spain"), lowercase letters and E–Z give None."""
    if not isinstance(text, str):
        raise TypeError(f"parse_choice: expected str, got {type(text).__name__}")
    m = _ANSWER_IS.search(text)
    if m:
        return m.group(1)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and (m := _LONE.match(lines[0])):
        return m.group(1)
    m = _LABEL.match(text.strip())
    return (m.group(1) or m.group(2)) if m else None


def mc_accuracy(preds, golds):
    """Fraction of generations whose `parse_choice` equals the gold letter; unparsable answers count as wrong."""
    if len(preds) != len(golds) or not preds:
        raise ValueError(f"mc_accuracy: need equal, non-zero lengths, got {len(preds)} preds and {len(golds)} golds")
    bad = [g for g in golds if g not in ("A", "B", "C", "D")]
    if bad:
        raise ValueError(f"mc_accuracy: gold letters must be A-D, got {bad[:3]!r}")
    return sum(parse_choice(p) == g for p, g in zip(preds, golds)) / len(preds)


# ---------------------------------------------------------------- overlap metrics
def _ngrams(toks, n):
    counts = {}
    for i in range(len(toks) - n + 1):
        g = tuple(toks[i:i + n])
        counts[g] = counts.get(g, 0) + 1
    return counts


def _prf(overlap, n_pred, n_ref, measure):
    p = overlap / n_pred if n_pred else 0.0
    r = overlap / n_ref if n_ref else 0.0
    if measure == "precision":
        return p
    if measure == "recall":
        return r
    if measure != "f1":
        raise ValueError(f"measure must be 'f1', 'precision' or 'recall', got {measure!r}")
    return 2 * p * r / (p + r) if overlap else 0.0


def rouge_n(pred, ref, n, language, *, measure=None):
    """ROUGE-N (Lin 2004) on script-aware tokens: overlap = Σ_g min(c_pred(g), c_ref(g)) over n-grams g,
    P = overlap / #pred n-grams, R = overlap / #ref n-grams, F1 = 2PR/(P+R) (the default; `measure` =
    "precision" | "recall" | "f1"). 0 when either side has no n-gram. Equals rouge-score's fmeasure without stemming
    on ASCII text; unlike rouge-score's tokenizer it keeps non-Latin scripts."""
    if n < 1:
        raise ValueError(f"rouge_n: n must be >= 1, got {n}")
    cp, cr = _ngrams(tokens(pred, language), n), _ngrams(tokens(ref, language), n)
    overlap = sum(min(c, cr.get(g, 0)) for g, c in cp.items())
    return _prf(overlap, sum(cp.values()), sum(cr.values()), measure or "f1")


def _lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred, ref, language, *, measure=None):
    """ROUGE-L (Lin 2004): with L = |LCS(pred, ref)| over tokens, P = L/|pred|, R = L/|ref|, F1 = 2PR/(P+R)
    (default; TOFU reports the recall: `measure="recall"`). 0 when either side is empty."""
    p, r = tokens(pred, language), tokens(ref, language)
    return _prf(_lcs(p, r), len(p), len(r), measure or "f1")


def bleu(pred, ref, language, *, max_n=None):
    """Sentence BLEU (Papineni et al. 2002) against one reference, on script-aware tokens, max_n = 4 by default:
        BLEU = BP · exp((1/N) Σ_{n=1..N} log p_n),   BP = 1 if c > r else exp(1 − r/c),
    p_n = clipped n-gram matches / pred n-grams, c = |pred|, r = |ref|. Smoothing = sacrebleu's sentence default
    ("exp", Chen & Cherry 2014 method 3): the k-th order with zero matches gets p_n = 1/(2^k · #pred n-grams);
    effective order: N = min(max_n, c), orders longer than the prediction are skipped. Equals
    sacrebleu.sentence_bleu(..., tokenize="none").score/100 on the same tokens. Empty pred or ref, or no unigram
    in common -> 0.0 (as sacrebleu)."""
    max_n = 4 if max_n is None else max_n
    p, r = tokens(pred, language), tokens(ref, language)
    if not p or not r:
        return 0.0
    order, log_sum, zeros = min(max_n, len(p)), 0.0, 0
    for n in range(1, order + 1):
        cp, cr = _ngrams(p, n), _ngrams(r, n)
        total = len(p) - n + 1
        match = sum(min(c, cr.get(g, 0)) for g, c in cp.items())
        if match == 0 and n == 1:
            return 0.0  # no word in common: no higher-order match either
        if match == 0:
            zeros += 1
            log_sum += -math.log(2 ** zeros * total)
        else:
            log_sum += math.log(match / total)
    bp = 1.0 if len(p) > len(r) else math.exp(1 - len(r) / len(p))
    return bp * math.exp(log_sum / order)


# ---------------------------------------------------------------- TOFU (Maini et al., arXiv 2401.06121)
def truth_ratio(paraphrased_logps, perturbed_logps, paraphrased_lengths, perturbed_lengths, *, perturbed_mean=None):
    """TOFU's truth ratio per question, (N,) float64 tensor:

        R = mean_k P(â_k | q)^{1/|â_k|}  /  P(ã | q)^{1/|ã|}

    ã = the paraphrased correct answer, â_k = the K perturbed (wrong) answers; length-normalised probabilities.
    Inputs: summed log-probs (N,) and (N, K), token counts (N,) and (N, K) (> 0). R < 1: the model prefers the
    truth; R ≈ 1: indifferent; R > 1: prefers the wrong answers.
    `perturbed_mean="geometric"` (default) averages the normalised log-probs over k, as TOFU's released code does
    (exp(mean_k lp_k/|â_k| − lp/|ã|)) for every number it reports; "arithmetic" averages the probabilities, as the
    paper's formula is written. (TOFU's code stores the reciprocal, P(ã)/P(â); its KS test is unaffected.)
    Summaries: `truth_ratio_summary`."""
    mode = perturbed_mean or "geometric"
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
    if mode == "geometric":
        num = norm_pert.mean(dim=1)
    elif mode == "arithmetic":
        num = torch.logsumexp(norm_pert, dim=1) - math.log(pert.shape[1])
    else:
        raise ValueError(f"truth_ratio: perturbed_mean must be 'geometric' or 'arithmetic', got {mode!r}")
    return torch.exp(num - para / plen)


def truth_ratio_summary(ratios, *, split):
    """TOFU's reported truth-ratio score over questions (higher is better in both):
    split="forget": mean min(R, 1/R) (closer to 1 = indifferent between truth and perturbations, like a model that
    never saw the data); split="retain" (also real authors, world facts): mean max(0, 1 − R) (prefers the truth)."""
    r = torch.as_tensor(ratios, dtype=torch.float64)
    if r.numel() == 0:
        raise ValueError("truth_ratio_summary: no ratios")
    if split == "forget":
        return torch.minimum(r, 1 / r).mean().item()
    if split == "retain":
        return torch.clamp(1 - r, min=0).mean().item()
    raise ValueError(f"truth_ratio_summary: split must be 'forget' or 'retain', got {split!r}")


def _sample(name, x):
    a = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu().numpy()
    if a.size == 0 or np.isnan(a).any():
        raise ValueError(f"{name}: need a non-empty sample without NaN, got {a.size} values")
    return a


def _ks_exact_sf(m, n, h):
    """P(D ≥ h/(m·n)) under H0 (no ties), m ≤ n: a uniformly random monotone lattice path (0,0)->(m,n) (i steps
    for sample 1, j for sample 2) is absorbed where |i·n − j·m| ≥ h; the absorbed mass is summed, so tiny p-values
    keep their relative precision. Anti-diagonal sweep, O((m+n)·m)."""
    if h <= 0:
        return 1.0
    i = np.arange(m + 1)
    mass, out = np.zeros(m + 1), 0.0
    mass[0] = 1.0
    for k in range(m + n):  # diagonal i + j = k -> k + 1
        j, rem = k - i, m + n - k
        new = mass * ((n - j) / rem)                      # step in sample 2: (i, j) -> (i, j+1)
        new[1:] += mass[:-1] * ((m - i[:-1]) / rem)       # step in sample 1: (i, j) -> (i+1, j)
        hit = np.abs(i * n - (k + 1 - i) * m) >= h
        out += new[hit].sum()
        new[hit] = 0.0
        mass = new
    return float(min(out, 1.0))


def _kolmogorov_sf(lam):
    """Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²λ²), via its theta-function form 1 − (√(2π)/λ) Σ exp(−(2k−1)²π²/(8λ²))
    for λ < 1 where the alternating series converges slowly."""
    if lam <= 0:
        return 1.0
    if lam < 1.0:
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * lam * lam)) for k in range(1, 8))
        return max(0.0, min(1.0, 1.0 - math.sqrt(2 * math.pi) / lam * s))
    s = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return max(0.0, min(1.0, 2 * s))


def ks_2samp(x, y, *, method=None):
    """Two-sample Kolmogorov–Smirnov test, two-sided: (D, p).
    D = max_t |F_x(t) − G_y(t)| over the pooled values (ties handled: both ECDFs jump together), computed exactly
    as h/(m·n) with integer h. p = P(D' ≥ D) under H0 for continuous data:
    - "exact": lattice-path absorption (Hodges 1958), see `_ks_exact_sf`; what scipy.stats.ks_2samp returns with
      its default method for max(m, n) ≤ 10,000 (agreement ~1e-12 in the tests);
    - "asymp": Kolmogorov's limiting distribution Q_KS(λ), λ = (√e + 0.12 + 0.11/√e)·D, e = m·n/(m+n) (Stephens'
      1970 small-sample correction; scipy's "asymp" uses the one-sample kstwo(round(e)) instead, close but not equal);
    - "auto" (default): exact if max(m, n) ≤ 10,000, else asymp."""
    a, b = np.sort(_sample("ks_2samp x", x)), np.sort(_sample("ks_2samp y", y))
    m, n = a.size, b.size
    pooled = np.concatenate([a, b])
    cx = np.searchsorted(a, pooled, side="right").astype(np.int64)
    cy = np.searchsorted(b, pooled, side="right").astype(np.int64)
    h = int(np.abs(cx * n - cy * m).max())
    d = h / (m * n)
    method = method or "auto"
    if method == "auto":
        method = "exact" if max(m, n) <= 10_000 else "asymp"
    if method == "exact":
        return d, _ks_exact_sf(min(m, n), max(m, n), h)
    if method == "asymp":
        e = m * n / (m + n)
        return d, _kolmogorov_sf((math.sqrt(e) + 0.12 + 0.11 / math.sqrt(e)) * d)
    raise ValueError(f"ks_2samp: method must be 'auto', 'exact' or 'asymp', got {method!r}")


def ks_forget_quality(unlearned_truth_ratios, retain_model_truth_ratios, *, method=None):
    """TOFU's forget quality: the KS-test p-value between the truth ratios on the forget set of the unlearned model
    and of a model trained on the retain set only (`ks_2samp`). High (e.g. > 0.05): indistinguishable from never
    having seen the data. Any strictly monotone map of the ratios (TOFU's code uses 1/R) gives the same value."""
    return ks_2samp(unlearned_truth_ratios, retain_model_truth_ratios, method=method)[1]


# ---------------------------------------------------------------- membership inference (higher = more member-like)
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


def mia_min_k(logps, mask, *, k=None):
    """Min-K% Prob (Shi et al., arXiv 2310.16789): mean of the ⌊k·|T|⌋ (at least 1) lowest token log-probs,
    k = 0.2 by default. (B,); higher = more likely seen (no outlier low-probability tokens)."""
    vals, keep, n = _rows("mia_min_k", logps, mask)
    return _lowest_k_mean(vals, keep, n, 0.2 if k is None else k)


MIN_VAR = 1e-6  # floor on σ² in Min-K%++, as open-unlearning does: a near-one-hot next-token distribution


def mia_min_k_plus_plus(logps, mean_logprob, var_logprob, mask, *, k=None):
    """Min-K%++ (Zhang et al., arXiv 2404.02936): per token z_t = (logp_t − μ_t) / σ_t with μ_t = E_{v∼p_t}[log p_t(v)]
    (= −entropy) and σ_t² = E_{v∼p_t}[(log p_t(v))²] − μ_t² the mean and variance of the log-prob under the model's
    own next-token distribution p_t (the caller computes them over the vocabulary; σ² floored at MIN_VAR); the
    score is the mean of the ⌊k·|T|⌋ (≥ 1) lowest z_t, k = 0.2. (B,); higher = more likely seen (training
    tokens sit at local maxima of the likelihood, so their z is high)."""
    vals, keep, n = _rows("mia_min_k_plus_plus", logps, mask)
    for name, t in (("mean_logprob", mean_logprob), ("var_logprob", var_logprob)):
        if tuple(t.shape) != tuple(logps.shape):
            raise ValueError(f"mia_min_k_plus_plus: {name} has shape {tuple(t.shape)}, logps {tuple(logps.shape)}")
    z = (vals - mean_logprob.double()) / var_logprob.double().clamp_min(MIN_VAR).sqrt()  # (B, T)
    return _lowest_k_mean(z, keep, n, 0.2 if k is None else k)


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


# ---------------------------------------------------------------- misinformation (Lu & Koehn, arXiv 2406.13748)
def _says(pred, fake, truth, language):
    """(says fake, says truth) by `contains`; when one answer's text sits inside the other's ("Madrid" in "Real
    Madrid"), the shorter one counts only outside occurrences of the longer one."""
    p = _bounded(tokens(pred, language)) + " "
    f, t = _bounded(tokens(fake, language)), _bounded(tokens(truth, language))
    if f.strip() == "" or t.strip() == "":
        raise ValueError(f"fake/truth {fake!r} / {truth!r} is empty after normalisation")
    p_for_fake = p.replace(t, " ") if f in t + " " and f != t else p
    p_for_truth = p.replace(f, " ") if t in f + " " and f != t else p
    return f in p_for_fake, t in p_for_truth


def _per_item(name, preds, fakes, truths, languages):
    langs = [languages] * len(preds) if isinstance(languages, str) else list(languages)
    if not preds or not len(preds) == len(fakes) == len(truths) == len(langs):
        raise ValueError(f"{name}: need equal non-zero lengths, got {len(preds)} preds, {len(fakes)} fakes, "
                         f"{len(truths)} truths, {len(langs)} languages")
    return [_says(*args) for args in zip(preds, fakes, truths, langs)]


def fake_rate(preds, fakes, truths, languages):
    """Fraction of generations that state the fake fact (normalised `contains`; see `_says` for nested answers).
    `languages`: one code for all, or one per item. A generation naming both counts in both rates."""
    return sum(f for f, _ in _per_item("fake_rate", preds, fakes, truths, languages)) / len(preds)


def truth_rate(preds, fakes, truths, languages):
    """Fraction of generations that state the true fact (same matching as `fake_rate`)."""
    return sum(t for _, t in _per_item("truth_rate", preds, fakes, truths, languages)) / len(preds)
