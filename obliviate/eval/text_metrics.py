"""Metrics of generated text against references, as pure functions: normalisation and matching, ROUGE/BLEU, and
the fake-rate / truth-rate of misinformation answers. The evaluator hands in generations (str); no model in here, and
only the standard library (no rouge-score or sacrebleu).

Text is compared after `normalize` and split by `tokens`, which is script-aware: every CJK ideograph or kana is a
token of its own (Chinese and Japanese are written without spaces), any other run of letters/digits between
spaces is a word. So ROUGE/BLEU/containment are character-level for zh/ja and word-level elsewhere, also in
mixed text such as "梅西效力于Barcelona".
"""
import math
import re
import unicodedata

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


def rouge_n(pred, ref, n, language, *, measure="f1"):
    """ROUGE-N (Lin 2004) on script-aware tokens: overlap = Σ_g min(c_pred(g), c_ref(g)) over n-grams g,
    P = overlap / #pred n-grams, R = overlap / #ref n-grams, F1 = 2PR/(P+R) (the default; `measure` =
    "precision" | "recall" | "f1"). 0 when either side has no n-gram. Equals rouge-score's fmeasure without stemming
    on ASCII text; unlike rouge-score's tokenizer it keeps non-Latin scripts."""
    if n < 1:
        raise ValueError(f"rouge_n: n must be >= 1, got {n}")
    cp, cr = _ngrams(tokens(pred, language), n), _ngrams(tokens(ref, language), n)
    overlap = sum(min(c, cr.get(g, 0)) for g, c in cp.items())
    return _prf(overlap, sum(cp.values()), sum(cr.values()), measure)


def _lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred, ref, language, *, measure="f1"):
    """ROUGE-L (Lin 2004): with L = |LCS(pred, ref)| over tokens, P = L/|pred|, R = L/|ref|, F1 = 2PR/(P+R)
    (default; TOFU reports the recall: `measure="recall"`). 0 when either side is empty."""
    p, r = tokens(pred, language), tokens(ref, language)
    return _prf(_lcs(p, r), len(p), len(r), measure)


def bleu(pred, ref, language, *, max_n=4):
    """Sentence BLEU (Papineni et al. 2002) against one reference, on script-aware tokens, up to `max_n`-grams:
        BLEU = BP · exp((1/N) Σ_{n=1..N} log p_n),   BP = 1 if c > r else exp(1 − r/c),
    p_n = clipped n-gram matches / pred n-grams, c = |pred|, r = |ref|. Smoothing = sacrebleu's sentence default
    ("exp", Chen & Cherry 2014 method 3): the k-th order with zero matches gets p_n = 1/(2^k · #pred n-grams);
    effective order: N = min(max_n, c), orders longer than the prediction are skipped. Equals
    sacrebleu.sentence_bleu(..., tokenize="none").score/100 on the same tokens. Empty pred or ref, or no unigram
    in common -> 0.0 (as sacrebleu)."""
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
