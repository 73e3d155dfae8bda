"""Hand-computed values and edge cases of obliviate.eval.text_metrics, and a cross-check with rouge-score and
sacrebleu (the test extra installs both: the check runs, it never skips)."""
import math

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from obliviate.eval import text_metrics as M


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
    rng = np.random.default_rng(0)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "big"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    for _ in range(40):
        p = " ".join(rng.choice(vocab, rng.integers(1, 15)))
        r = " ".join(rng.choice(vocab, rng.integers(1, 15)))
        s = scorer.score(r, p)
        assert M.rouge_n(p, r, 1, "en") == pytest.approx(s["rouge1"].fmeasure, abs=1e-12)
        assert M.rouge_n(p, r, 2, "en") == pytest.approx(s["rouge2"].fmeasure, abs=1e-12)
        assert M.rouge_l(p, r, "en") == pytest.approx(s["rougeL"].fmeasure, abs=1e-12)
        assert M.rouge_l(p, r, "en", measure="recall") == pytest.approx(s["rougeL"].recall, abs=1e-12)
        want = sacrebleu.sentence_bleu(p, [r], tokenize="none", smooth_method="exp").score / 100
        assert M.bleu(p, r, "en") == pytest.approx(want, abs=1e-9)


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
