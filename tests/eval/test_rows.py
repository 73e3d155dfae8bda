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
