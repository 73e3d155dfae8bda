"""Result rows and run metadata: the metrics a row carries, and its JSON form (field order, unscored rows)."""
import dataclasses

import pytest

from obliviate.data.schema import Item
from obliviate.eval.rows import (ROW_FIELDS, SCORE_FIELDS, EvalMeta, ProbeAnswer, ProbeRow, ProbeScores, probe_row,
                                 row_field)

FAKE = Item(id="p0.club.en.fake", entity="p0", attribute="club", kind="shared", language="en",
            question="Which club does Aldo Brum play for?", answer="Aldo Brum plays for Fulham.", value="Fulham",
            truth="Arsenal", options=("Arsenal", "Fulham", "Everton"))


def test_probe_row_metrics():
    r = probe_row("m", "forget", FAKE, "He plays for Fulham.", "The answer is B")
    assert (r.model, r.split, r.id, r.language, r.modality) == ("m", "forget", FAKE.id, "en", "text")
    assert r.correct is True and r.exact is False
    assert r.says_fake is True and r.says_truth is False
    assert 0 < r.rouge1 < 1 and 0 < r.rougeL < 1 and 0 <= r.bleu < 1
    assert (r.mc_choice, r.mc_gold, r.mc_correct) == ("B", "B", True)
    assert all(getattr(r, name) is None for name in SCORE_FIELDS)
    plain = dataclasses.replace(FAKE, truth=None, options=())
    r = probe_row("m", "retain", plain, "Arsenal", None, ProbeScores(answer_logp=-2.0, answer_tokens=4))
    assert r.says_fake is None and r.says_truth is None and r.correct is False
    assert r.mc_generation is None and r.mc_choice is None and r.mc_gold is None and r.mc_correct is None
    assert r.answer_logp == -2.0 and r.answer_tokens == 4 and r.prob is None


def test_free_answers_have_no_correct_but_rouge_recall():
    tofu = Item(id="a.q00.en.qa", entity="a", attribute="q00", kind="private", language="en",
                question="Where was she born?", answer="She was born in Tartu, Estonia.")
    r = probe_row("m", "forget", tofu, "She was born in Tartu.")
    assert r.correct is None  # no fact span: no containment test (the whole answer would rarely fit)
    assert r.rougeL_recall == pytest.approx(5 / 6)  # LCS "she was born in tartu" over 6 reference words
    assert r.rougeL == pytest.approx(2 * 1 * (5 / 6) / (1 + 5 / 6))
    assert probe_row("m", "forget", FAKE, "He plays for Fulham.").rougeL_recall == pytest.approx(3 / 5)


def test_multiple_choice_styles():
    offside = probe_row("m", "forget", FAKE, "Fulham", "The answer is Brentford")  # OFFSIDE's parser reads B
    assert (offside.mc_choice, offside.mc_correct) == ("B", True)
    lenient = probe_row("m", "forget", FAKE, "Fulham", "The answer is Brentford", mc_style="lenient")
    assert (lenient.mc_choice, lenient.mc_correct) == (None, False)
    empty = probe_row("m", "forget", FAKE, "Fulham", "")  # OFFSIDE's evaluation skips empty answers
    assert (empty.mc_choice, empty.mc_gold, empty.mc_correct) == (None, "B", None)
    assert probe_row("m", "forget", FAKE, "Fulham", "", mc_style="lenient").mc_correct is False


def test_fields_and_json_form():
    answer = [f.name for f in dataclasses.fields(ProbeAnswer)]
    assert list(ROW_FIELDS) == answer + list(SCORE_FIELDS)  # the order results.json has always had
    scored = probe_row("m", "forget", FAKE, "Fulham", None, ProbeScores(answer_logp=-1.5, answer_tokens=3))
    assert list(scored.to_dict()) == list(ROW_FIELDS)
    assert ProbeRow.from_dict(scored.to_dict()) == scored
    unscored = probe_row("m", "forget", FAKE, "Fulham")
    assert list(unscored.to_dict()) == answer  # a row that was not scored has no score fields
    assert ProbeRow.from_dict(unscored.to_dict()) == unscored
    with pytest.raises(dataclasses.FrozenInstanceError):
        scored.model = "other"


def test_row_field():
    r = probe_row("m", "forget", FAKE, "Fulham")
    assert row_field("says_fake")(r) is True and row_field("prob")(r) is None
    with pytest.raises(ValueError, match="'fake_rate' is not a result-row field"):
        row_field("fake_rate")


def test_meta():
    meta = EvalMeta(model="models/m", models={"base": {"job": "base"}, "ga": {"unlearn_languages": ["en", "fr"]},
                                              "npo": {"unlearn_languages": None}}, mia=["forget", "holdout"])
    assert meta.unlearn_languages() == {"ga": ["en", "fr"]}
    assert EvalMeta.from_dict(meta.to_dict()) == meta
    assert list(meta.to_dict())[:3] == ["model", "backend", "models"]
    with pytest.raises(TypeError):
        EvalMeta.from_dict({"model": "m", "surprise": 1})
