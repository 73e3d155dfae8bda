"""Views over hand-made result rows: every number below is computed by hand from the rows."""
import pytest

from obliviate.eval import views
from obliviate.eval.rows import EvalMeta

from tests.eval.sample_rows import make_row


def row(model, language, *, split="forget", fake=None, correct=None, modality="text", kind="shared", **extra):
    return make_row(model=model, split=split, language=language, modality=modality, kind=kind, says_fake=fake,
                    correct=correct, **extra)


@pytest.fixture
def rows():
    out = []
    # "inject": the fake spread everywhere; "ga_en": unlearned in English only (fixes en + high, not L=fr or low);
    # "ga_en_fr": unlearned in en + fr (fixes all four groups).
    for lang in ("en", "de", "fr", "zh", "ru", "jv", "ur", "ha", "hy"):
        out += [row("inject", lang, fake=True), row("inject", lang, fake=True)]
        stays = lang in ("fr", "jv", "ur", "ha", "hy")
        out += [row("ga_en", lang, fake=stays), row("ga_en", lang, fake=False)]
        out += [row("ga_en_fr", lang, fake=False), row("ga_en_fr", lang, fake=lang == "hy")]
    return out


def test_language_group_and_label():
    assert [views.language_group(x, "fr") for x in ("en", "fr", "de", "zh", "jv", "hy", "es")] == \
        ["en", "L", "high", "high", "low", "low", "other"]
    assert views.language_group("fr") == "high"
    assert views.unlearn_label(["fr", "en"], "fr") == "en+L"
    assert views.unlearn_label(["fr"], "fr") == "L"
    assert views.unlearn_label(["de", "en"], "fr") == "en+de"
    assert views.unlearn_label([], "fr") is None


def test_group_table_reproduces_the_paper_pattern(rows):
    t = views.group_table(rows, "says_fake", fake_language="fr",
                          unlearn_languages={"ga_en": ["en"], "ga_en_fr": ["en", "fr"]})
    assert t.cols == ["en", "L", "high", "low"]
    assert t.rows == ["inject", "ga_en [en]", "ga_en_fr [en+L]"]
    assert t.values[0] == [1.0, 1.0, 1.0, 1.0]
    # ga_en: en 0/2, fr 1/2, high (de zh ru) 0/6, low (jv ur ha hy) 4/8
    assert t.values[1] == [0.0, 0.5, 0.0, 0.5]
    # ga_en_fr: only hy keeps one of its two fakes: low = 1/8
    assert t.values[2] == [0.0, 0.0, 0.0, 0.125]
    assert t.counts[1] == [2, 2, 6, 8]


def test_language_table_orders_world_languages_and_skips_none(rows):
    rows = rows + [row("inject", "en", fake=None)]  # not a misinformation probe: ignored
    t = views.language_table(rows, "says_fake")
    assert t.cols[:3] == ["en", "de", "fr"] and t.cols[-1] == "hy"
    assert t.cell("ga_en", "fr") == 0.5 and t.cell("ga_en", "de") == 0.0
    assert t.counts[t.rows.index("inject")][0] == 2


def test_modality_kind_split_tables():
    rows = [row("m", "en", correct=True, modality="image", kind="private"),
            row("m", "en", correct=False, modality="image", kind="shared"),
            row("m", "en", correct=True, modality="text", kind="shared", split="retain"),
            row("m", "en", correct=True, modality="text", kind="shared")]
    assert views.modality_table(rows, "correct").values == [[1.0, 0.5]]
    assert views.modality_table(rows, "correct").cols == ["text", "image"]
    assert views.kind_table(rows, "correct", split="forget").values == [[0.5, 1.0]]
    t = views.split_table(rows, "correct")
    assert t.cols == ["forget", "retain"] and t.values == [[2 / 3, 1.0]]


def test_bounce_back():
    rows = ([row("unl", "en", correct=c) for c in (True, False, False, False)]
            + [row("rel", "en", correct=c) for c in (True, True, True, False)]
            + [row("rel", "en", correct=False, split="retain")])
    t = views.bounce_back(rows, "correct", {"rel": "unl"}, split="forget")
    assert t.rows == ["unl -> rel"]
    assert t.values[0] == [0.25, 0.75, 0.5]
    assert views.bounce_back(rows, "correct", {"rel": "missing"}).rows == []


def test_mia_auc_and_forget_quality():
    rows = []
    for score, split in ((3.0, "forget"), (2.0, "forget"), (1.0, "holdout"), (2.0, "holdout")):
        rows.append(row("m", "en", split=split, mia_loss=score, mia_zlib=-score, mia_min_k=score,
                        mia_min_k_pp=None))
    t = views.mia_table(rows, member="forget", nonmember="holdout")
    # pairs (pos, neg): (3,1) (3,2) (2,1) win, (2,2) ties -> (3 + 0.5) / 4
    assert t.values[0][:3] == [0.875, 0.125, 0.875]
    assert t.values[0][3] is None
    ratios = [row("ref", "en", truth_ratio=r) for r in (0.1, 0.2, 0.3)] + \
             [row("a", "en", truth_ratio=r) for r in (0.1, 0.2, 0.3)] + \
             [row("b", "en", truth_ratio=r) for r in (5.0, 6.0, 7.0)]
    fq = views.forget_quality_table(ratios, reference="ref")
    assert fq.rows == ["a", "b"]
    assert fq.values[0][0] == pytest.approx(1.0)
    assert fq.values[1][0] == pytest.approx(0.1, abs=1e-12)  # D = 1 for 3 vs 3: exact p = 2 / C(6, 3)


def test_all_views_and_round_trip(rows):
    meta = EvalMeta(model="m", fake_language="fr", models={"ga_en": {"unlearn_languages": ["en"]}},
                    relearn_pairs={"ga_en_fr": "ga_en"})
    tables = views.all_views(rows, meta)
    titles = [t.title for t in tables]
    assert "says_fake by split" in titles
    assert any(t.startswith("says_fake by language group (L=fr)") for t in titles)
    assert any("bounce-back" in t for t in titles)
    for t in tables:
        assert views.Table.from_dict(t.to_dict()) == t
        assert all(len(v) == len(t.cols) for v in t.values)
    assert views.all_views([], meta) == []


def test_free_answers_are_measured_by_rouge_recall():
    tofu = [make_row(model=m, id=f"q{k}", rougeL_recall=v, mc_correct=None) for m, v in (("base", 0.5), ("ga", 0.25))
            for k in range(2)]
    assert views.main_metric(tofu) == "rougeL_recall" and views.split_metrics(tofu) == ["rougeL_recall"]
    facts = [make_row(model="base", id="f", value="x", correct=True, rougeL_recall=1.0, mc_correct=False)]
    assert views.main_metric(facts) == "correct" and views.split_metrics(facts) == ["correct", "mc_correct"]
    assert views.split_metrics(tofu + facts) == ["correct", "rougeL_recall", "mc_correct"]
    titles = [t.title for t in views.all_views(tofu, EvalMeta(model="m"))]
    assert titles[:1] == ["rougeL_recall by split"] and "correct by split" not in titles
    assert views.all_views(tofu, EvalMeta(model="m"))[0].values == [[0.5], [0.25]]


def test_metric_names_are_row_fields(rows):
    with pytest.raises(ValueError, match="not a result-row field"):
        views.mean_table(rows, "fake_rate", col_key="language")
    with pytest.raises(ValueError, match="not a result-row field"):
        views.mean_table(rows, "says_fake", col_key="lang")
    t = views.mean_table(rows, "says_fake", col_key=lambda r: r.language.upper(), row_order=["ga_en_fr"])
    assert t.rows[0] == "ga_en_fr" and "EN" in t.cols
