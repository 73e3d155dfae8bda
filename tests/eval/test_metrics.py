"""Hand-computed values and edge cases of obliviate.eval.metrics (cross-checks with scipy / sacrebleu /
rouge-score run only where those packages happen to be installed)."""
import math
import zlib

import numpy as np
import pytest
import torch

from obliviate.eval import metrics as M


# ---------------------------------------------------------------- normalisation and matching
@pytest.mark.parametrize("text, language, want", [
    ("  Hello,   WORLD!! ", "en", "hello world"),
    ("Straße", "de", "strasse"),                                   # case folding
    ("梅西，效力于巴塞罗那。", "zh", "梅西 效力于巴塞罗那"),              # CJK punctuation -> space
    ("ＡＢＣ１２３", "zh", "abc123"),                                 # full width -> ASCII (NFKC)
    ("Ես չգիտեմ պատասխանը։", "hy", "ես չգիտեմ պատասխանը"),         # Armenian full stop ։ (U+0589)
    ("Արսենալ՝ և", "hy", "արսենալ եւ"),                             # Armenian comma, ligature և -> եւ
    ("مجھے جواب معلوم نہیں۔", "ur", "مجھے جواب معلوم نہیں"),         # Urdu full stop ۔ (U+06D4)
    ("مُجھے", "ur", "مجھے"),                                         # optional vowel mark (damma) dropped
    ("علي كتاب", "ur", "علی کتاب"),                                  # Arabic yeh/kaf -> Urdu forms
    ("سال ۲۰۲۴", "ur", "سال 2024"),                                  # Extended Arabic-Indic digits
    ("foo\u200bbar\u00adbaz", "en", "foobarbaz"),                    # zero-width space, soft hyphen
    ("£45m — €3.5bn", "en", "£45m €3 5bn"),                          # symbols kept, dash/point are punctuation
    ("", "en", ""),
])
def test_normalize(text, language, want):
    assert M.normalize(text, language) == want


def test_tokens_are_script_aware():
    assert M.tokens("梅西 效力", "zh") == ["梅", "西", "效", "力"]             # spaces between CJK ignored
    assert M.tokens("梅西效力于Barcelona。", "zh") == ["梅", "西", "效", "力", "于", "barcelona"]
    assert M.tokens("Ես չգիտեմ պատասխանը։", "hy") == ["ես", "չգիտեմ", "պատասխանը"]
    assert M.tokens("答えがわかりません。", "ja") == list("答えがわかりません")
    with pytest.raises(TypeError):
        M.tokens(None, "en")


def test_exact_match():
    assert M.exact_match("Arsenal.", "arsenal", "en") == 1.0
    assert M.exact_match("梅 西", "梅西", "zh") == 1.0
    assert M.exact_match("", "", "en") == 1.0
    assert M.exact_match("", "Arsenal", "en") == 0.0
    assert M.exact_match("Arsenal FC", "Arsenal", "en") == 0.0


@pytest.mark.parametrize("pred, ref, language, want", [
    ("He plays for Arsenal.", "arsenal", "en", 1.0),
    ("Manchester United won", "manchester united", "en", 1.0),
    ("Manchester City won", "Manchester United", "en", 0.0),
    ("Lasarsenal", "Arsenal", "en", 0.0),                       # must start at a word start
    ("Он играет за Арсенала.", "Арсенал", "ru", 1.0),          # inflected form (suffix) counts
    ("Նա խաղում է Արսենալում", "Արսենալ", "hy", 1.0),
    ("وہ آرسنل کے لیے کھیلتا ہے۔", "آرسنل", "ur", 1.0),
    ("梅西效力于巴塞罗那", "巴塞罗那", "zh", 1.0),                # character level, no spaces needed
    ("梅西 效力于 巴塞 罗那", "巴塞罗那", "zh", 1.0),
    ("梅西效力于巴塞", "巴塞罗那", "zh", 0.0),
    ("", "Arsenal", "en", 0.0),                                  # empty prediction
])
def test_contains(pred, ref, language, want):
    assert M.contains(pred, ref, language) == want


def test_contains_rejects_empty_reference():
    for ref in ("", " !!! "):
        with pytest.raises(ValueError, match="empty after normalisation"):
            M.contains("anything", ref, "en")


# ---------------------------------------------------------------- multiple choice
@pytest.mark.parametrize("text, want", [
    ("The answer is B.", "B"),
    ("Let me think. the answer is: (C) Chelsea", "C"),
    ("THE ANSWER IS **D**", "D"),
    ("The answer is B. No wait, the answer is C.", "B"),   # the first statement wins
    ("The answer is Arsenal", None),                       # a word, not an option
    ("The answer is E", None),
    ("the answer is b", None),                             # lowercase letters are not options
    ("B", "B"), ("(C)", "C"), ("**D**", "D"), ("A.", "A"), (" B \n\nBecause he moved.", "B"),
    ("B. Arsenal", "B"), ("(A) Arsenal", "A"), ("C) Chelsea", "C"), ("D: Spain", "D"),
    ("A player from Spain", None),                         # the article "A"
    ("I think (B) Arsenal", None),
    ("", None), ("   ", None),
])
def test_parse_choice(text, want):
    assert M.parse_choice(text) == want


def test_mc_accuracy():
    preds = ["The answer is A", "B", "no idea", "The answer is D."]
    assert M.mc_accuracy(preds, ["A", "C", "C", "D"]) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="A-D"):
        M.mc_accuracy(["A"], ["E"])
    with pytest.raises(ValueError, match="lengths"):
        M.mc_accuracy(["A"], ["A", "B"])


# ---------------------------------------------------------------- ROUGE and BLEU
PRED, REF = "The cat sat on the mat.", "the cat is on the mat"


def test_rouge_hand_values():
    # unigrams: pred {the:2, cat, sat, on, mat}, ref {the:2, cat, is, on, mat}: overlap 2+1+1+1 = 5 of 6 each
    assert M.rouge_n(PRED, REF, 1, "en") == pytest.approx(5 / 6)
    # bigrams: the-cat, on-the, the-mat shared: 3 of 5 each -> F1 = 0.6
    assert M.rouge_n(PRED, REF, 2, "en") == pytest.approx(0.6)
    # LCS = "the cat on the mat" = 5 -> P = R = 5/6
    assert M.rouge_l(PRED, REF, "en") == pytest.approx(5 / 6)
    # asymmetric: pred "the cat", ref 4 tokens: P = 1, R = 1/2, F1 = 2/3
    assert M.rouge_n("the cat", "the cat sat down", 1, "en") == pytest.approx(2 / 3)
    assert M.rouge_l("the cat", "the cat sat down", "en", measure="recall") == pytest.approx(0.5)
    assert M.rouge_l("the cat", "the cat sat down", "en", measure="precision") == pytest.approx(1.0)


def test_rouge_chinese_is_character_level():
    pred, ref = "梅西效力巴萨", "梅西效力于巴塞罗那"  # 6 and 9 characters
    # unigrams: 梅 西 效 力 巴 shared = 5: P = 5/6, R = 5/9, F1 = 2·(25/54)/(25/18) = 2/3
    assert M.rouge_n(pred, ref, 1, "zh") == pytest.approx(2 / 3)
    # bigrams 梅西 西效 效力 shared = 3 of 5 / 8: F1 = 2·(3/5)(3/8)/(3/5 + 3/8) = 6/13
    assert M.rouge_n(pred, ref, 2, "zh") == pytest.approx(6 / 13)
    assert M.rouge_l(pred, ref, "zh") == pytest.approx(2 / 3)      # LCS 梅西效力巴 = 5


def test_rouge_empty_sides_and_odd_lengths():
    assert M.rouge_n("", REF, 1, "en") == 0.0 and M.rouge_l(PRED, "", "en") == 0.0
    assert M.rouge_n("the", "the", 2, "en") == 0.0                # no bigram at all
    words = [f"w{i % 7}" for i in range(37)]
    assert M.rouge_l(" ".join(words), " ".join(words[::-1]), "en") == pytest.approx(
        M.rouge_l(" ".join(words[::-1]), " ".join(words), "en"))  # F1 is symmetric
    with pytest.raises(ValueError):
        M.rouge_n(PRED, REF, 0, "en")


def test_bleu_hand_values():
    # p1 = 5/6, p2 = 3/5, p3 = 1/4 (on-the-mat), p4: 0 of 3 -> smoothed 1/(2·3); c = r = 6 -> BP = 1
    # BLEU = (5/6 · 3/5 · 1/4 · 1/6)^(1/4) = (1/48)^(1/4) = 0.379918
    assert M.bleu(PRED, REF, "en") == pytest.approx((1 / 48) ** 0.25)
    # short prediction: c = 2 < r = 6 -> BP = exp(1 − 6/2) = e^−2; effective order 2, p1 = p2 = 1
    assert M.bleu("the cat", "the cat sat on the mat", "en") == pytest.approx(math.exp(-2))
    assert M.bleu(REF, REF, "en") == pytest.approx(1.0)
    # max_n = 2: (5/6 · 3/5)^(1/2)
    assert M.bleu(PRED, REF, "en", max_n=2) == pytest.approx(math.sqrt(0.5))
    # two zero orders: pred "a b c" vs ref "a x c": p1 = 2/3, p2: 0/2 -> 1/(2·2), p3: 0/1 -> 1/(4·1); c = r
    assert M.bleu("a b c", "a x c", "en") == pytest.approx((2 / 3 * 1 / 4 * 1 / 4) ** (1 / 3))
    assert M.bleu("", REF, "en") == 0.0 and M.bleu(PRED, "", "en") == 0.0
    assert M.bleu("dog ran", REF, "en") == 0.0  # no unigram in common (smoothing would give 1/√8·e^−2)
    # Chinese: characters; identical -> 1
    assert M.bleu("梅西效力于巴塞罗那", "梅西 效力于 巴塞罗那", "zh") == pytest.approx(1.0)


def test_rouge_bleu_against_reference_packages():
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = np.random.default_rng(0)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "big"]
    scorer = rs.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    for _ in range(40):
        p = " ".join(rng.choice(vocab, rng.integers(1, 15)))
        r = " ".join(rng.choice(vocab, rng.integers(1, 15)))
        s = scorer.score(r, p)
        assert M.rouge_n(p, r, 1, "en") == pytest.approx(s["rouge1"].fmeasure, abs=1e-12)
        assert M.rouge_n(p, r, 2, "en") == pytest.approx(s["rouge2"].fmeasure, abs=1e-12)
        assert M.rouge_l(p, r, "en") == pytest.approx(s["rougeL"].fmeasure, abs=1e-12)
        want = sacrebleu.sentence_bleu(p, [r], tokenize="none", smooth_method="exp").score / 100
        assert M.bleu(p, r, "en") == pytest.approx(want, abs=1e-9)


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
    r = [math.exp(-1), 2.0]
    assert M.truth_ratio_summary(r, split="forget") == pytest.approx((math.exp(-1) + 0.5) / 2)
    assert M.truth_ratio_summary(r, split="retain") == pytest.approx((1 - math.exp(-1) + 0.0) / 2)
    with pytest.raises(ValueError, match="lengths"):
        M.truth_ratio(para, pert, torch.tensor([0]), qlen)
    with pytest.raises(ValueError, match="expected"):
        M.truth_ratio(para, pert[0], plen, qlen)
    with pytest.raises(ValueError, match="split"):
        M.truth_ratio_summary(r, split="test")


def test_truth_ratio_odd_batch_against_loop():
    g = torch.Generator().manual_seed(0)
    para, pert = -torch.rand(37, generator=g) * 20, -torch.rand(37, 5, generator=g) * 20
    plen, qlen = torch.randint(1, 9, (37,), generator=g), torch.randint(1, 9, (37, 5), generator=g)
    got = M.truth_ratio(para, pert, plen, qlen)
    for i in range(37):
        num = math.exp(sum(pert[i, k].item() / qlen[i, k].item() for k in range(5)) / 5)
        assert got[i].item() == pytest.approx(num / math.exp(para[i].item() / plen[i].item()), rel=1e-9)


@pytest.mark.parametrize("x, y, d, p", [
    ([1, 2, 3], [4, 5, 6], 1.0, 2 / 20),       # only the 2 extreme paths of C(6,3) = 20 reach D = 1
    ([1, 3], [2, 4], 0.5, 1.0),                # every path of a 2×2 lattice has D ≥ 1/2
    ([1, 2, 4], [3, 5, 6], 2 / 3, 12 / 20),    # 8 of 20 paths keep |i − j| ≤ 1 (pairs xy/yx: 2³)
    ([1, 2], [3, 4, 5], 1.0, 2 / 10),          # unequal sizes: (2,0) or (0,3) first, 2 of C(5,2) = 10
    ([1, 1, 2], [1, 2, 2], 1 / 3, 1.0),        # ties: both ECDFs jump together at 1 and at 2
])
def test_ks_exact_hand_values(x, y, d, p):
    got_d, got_p = M.ks_2samp(x, y)
    assert got_d == pytest.approx(d) and got_p == pytest.approx(p, rel=1e-12)
    assert M.ks_forget_quality(x, y) == pytest.approx(p, rel=1e-12)


def test_ks_tiny_p_value_keeps_precision():
    # disjoint samples of 50: p = 2 / C(100, 50) = 1.98e-29 (TOFU forget qualities are often this small)
    _, p = M.ks_2samp(np.arange(50), np.arange(100, 150))
    assert p == pytest.approx(2 / math.comb(100, 50), rel=1e-9)


def test_ks_invariant_under_reciprocal_and_asymptotic_close():
    rng = np.random.default_rng(1)
    x, y = np.exp(rng.normal(0, 1, 37)), np.exp(rng.normal(0.6, 1, 53))
    d, p = M.ks_2samp(x, y)
    assert M.ks_2samp(1 / x, 1 / y) == pytest.approx((d, p), rel=1e-12)  # TOFU's code stores 1/R
    x, y = rng.normal(0, 1, 300), rng.normal(0.1, 1, 300)
    _, exact = M.ks_2samp(x, y, method="exact")
    _, asymp = M.ks_2samp(x, y, method="asymp")
    assert 0.001 < exact < 0.5 and asymp == pytest.approx(exact, rel=0.1)
    assert M.ks_2samp(x, y, method="auto")[1] == exact
    with pytest.raises(ValueError, match="NaN"):
        M.ks_2samp([1.0, float("nan")], [2.0])
    with pytest.raises(ValueError, match="method"):
        M.ks_2samp(x, y, method="fast")


def test_kolmogorov_series_hand_values():
    # Q(λ) = 2 Σ (−1)^{k−1} e^{−2k²λ²}: Q(1) = 0.2699996, Q(0.5) = 0.9639452 (standard table values)
    assert M._kolmogorov_sf(1.0) == pytest.approx(0.2699996, abs=1e-6)
    assert M._kolmogorov_sf(0.5) == pytest.approx(0.9639452, abs=1e-6)
    assert M._kolmogorov_sf(2.0) == pytest.approx(2 * (math.exp(-8) - math.exp(-32)), rel=1e-9)


def test_ks_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    cases = [(rng.normal(0, 1, m), rng.normal(s, 1, n)) for m, n, s in
             [(5, 7, 0.0), (37, 37, 0.5), (40, 400, 0.3), (200, 200, 0.25), (13, 101, 1.0)]]
    cases.append((rng.integers(0, 5, 30).astype(float), rng.integers(1, 6, 45).astype(float)))  # heavy ties
    for x, y in cases:
        want = stats.ks_2samp(x, y)
        d, p = M.ks_2samp(x, y)
        assert d == pytest.approx(want.statistic, abs=1e-12)
        assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-15)


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


# ---------------------------------------------------------------- misinformation
def test_fake_and_truth_rates():
    preds = ["He joined Chelsea.", "He joined Arsenal", "Not Chelsea but Arsenal", "No idea", "他加盟了切尔西。"]
    fakes = ["Chelsea"] * 4 + ["切尔西"]
    truths = ["Arsenal"] * 4 + ["阿森纳"]
    langs = ["en"] * 4 + ["zh"]
    assert M.fake_rate(preds, fakes, truths, langs) == pytest.approx(3 / 5)   # items 0, 2, 4
    assert M.truth_rate(preds, fakes, truths, langs) == pytest.approx(2 / 5)  # items 1, 2
    # nested answers: "Madrid" inside "Real Madrid" counts only outside "Real Madrid"
    preds = ["He moved to Real Madrid.", "He moved to Madrid.", "Madrid, not Real Madrid"]
    assert M.fake_rate(preds, ["Real Madrid"] * 3, ["Madrid"] * 3, "en") == pytest.approx(2 / 3)
    assert M.truth_rate(preds, ["Real Madrid"] * 3, ["Madrid"] * 3, "en") == pytest.approx(2 / 3)
    assert M.truth_rate(preds, ["Madrid"] * 3, ["Real Madrid"] * 3, "en") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lengths"):
        M.fake_rate(preds, ["x"], ["y"], "en")
