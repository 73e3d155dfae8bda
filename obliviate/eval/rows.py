"""What an evaluation records: one `ProbeRow` per probe × model, and the run's `EvalMeta`. results.json holds them
as JSON objects, field for field and in field order (`to_dict` / `from_dict`); the views, the report and the demo's
tables read their attributes (a view given a field's name reads it through `row_field`, which checks the name).
"""
from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

from obliviate.data.schema import Item
from obliviate.eval import text_metrics
from obliviate.eval.choice import MC_STYLE, mc_counts, mc_gold, parse_choice


@dataclass(frozen=True)
class ProbeAnswer:
    """A probe, one model's greedy answer to it, and the text metrics of that answer (None where one does not
    apply). correct: the answer contains the fact `value` (`text_metrics.contains`); None for an item without a
    `value` (a free answer, as TOFU's: its measure is rougeL_recall); exact: it equals the item's answer;
    rouge1 / rouge2 / rougeL (F1), rougeL_recall (TOFU's "ROUGE") and bleu: against the item's answer;
    says_fake / says_truth: for misinformation items (`truth` set, `value` = the fake), whether it states the fake /
    the truth; mc_*: for items with options, the multiple-choice answer, the letter parsed from it, the gold letter
    and whether they match (None when the style's evaluation skips the answer: OFFSIDE's skips empty ones)."""

    model: str
    split: str
    id: str
    entity: str
    attribute: str
    kind: str
    language: str
    modality: str  # "text" or "image"
    question: str
    answer: str
    value: str | None
    truth: str | None
    generation: str
    correct: bool | None
    exact: bool
    says_fake: bool | None
    says_truth: bool | None
    rouge1: float
    rouge2: float
    rougeL: float
    bleu: float
    mc_generation: str | None = None
    mc_choice: str | None = None
    mc_gold: str | None = None
    mc_correct: bool | None = None
    rougeL_recall: float | None = None


@dataclass(frozen=True)
class ProbeScores:
    """Log-prob scores of an item's given answers under one model (`scoring.score_items`, whose docstring defines
    each); all None when the evaluation did not score."""

    truth_value_logp: float | None = None
    truth_ratio: float | None = None
    answer_logp: float | None = None
    answer_tokens: int | None = None
    prob: float | None = None
    value_logp: float | None = None
    value_tokens: int | None = None
    mia_loss: float | None = None
    mia_zlib: float | None = None
    mia_min_k: float | None = None
    mia_min_k_pp: float | None = None
    paraphrase_prob: float | None = None


SCORE_FIELDS = tuple(f.name for f in fields(ProbeScores))


@dataclass(frozen=True)
class ProbeRow(ProbeScores, ProbeAnswer):
    """One probe answered by one model: `ProbeAnswer`'s fields, then `ProbeScores'` (a dataclass lists the fields
    of its last base first), the order results.json has always had."""

    def to_dict(self) -> dict:
        """The row as results.json writes it; a row without any score (not scored) has no score fields."""
        out = asdict(self)
        if all(out[name] is None for name in SCORE_FIELDS):
            for name in SCORE_FIELDS:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ProbeRow:
        return cls(**data)


ROW_FIELDS = tuple(f.name for f in fields(ProbeRow))


def row_field(name: str) -> Callable[[ProbeRow], Any]:
    """A getter of the row field `name` (e.g. a view's metric); ValueError for a name that is not a field."""
    if name not in ROW_FIELDS:
        raise ValueError(f"{name!r} is not a result-row field; fields: {', '.join(ROW_FIELDS)}")
    return operator.attrgetter(name)


def probe_row(model: str, split: str, item: Item, generation: str, mc_generation: str | None = None,
              scores: ProbeScores = ProbeScores(), *, mc_style: str = MC_STYLE) -> ProbeRow:
    """The row of `item` answered by `model`: the probe, the answer, every metric of it, and its `scores`.
    `mc_style`: the multiple-choice parser the `mc_generation` is read with (`eval.choice`)."""
    lang = item.language
    says_fake = says_truth = None
    if item.truth is not None and item.value is not None:
        says_fake = text_metrics.fake_rate([generation], [item.value], [item.truth], lang) == 1.0
        says_truth = text_metrics.truth_rate([generation], [item.value], [item.truth], lang) == 1.0
    choice = gold = mc_correct = None
    if mc_generation is not None:
        choice, gold = parse_choice(mc_generation, style=mc_style), mc_gold(item)
        mc_correct = choice == gold if mc_counts(mc_generation, style=mc_style) else None
    return ProbeRow(
        model=model, split=split, id=item.id, entity=item.entity, attribute=item.attribute, kind=item.kind,
        language=lang, modality="image" if item.image else "text", question=item.question, answer=item.answer,
        value=item.value, truth=item.truth, generation=generation,
        correct=None if item.value is None else text_metrics.contains(generation, item.value, lang) == 1.0,
        exact=text_metrics.exact_match(generation, item.answer, lang) == 1.0,
        says_fake=says_fake, says_truth=says_truth,
        rouge1=text_metrics.rouge_n(generation, item.answer, 1, lang),
        rouge2=text_metrics.rouge_n(generation, item.answer, 2, lang),
        rougeL=text_metrics.rouge_l(generation, item.answer, lang),
        bleu=text_metrics.bleu(generation, item.answer, lang),
        mc_generation=mc_generation, mc_choice=choice, mc_gold=gold, mc_correct=mc_correct,
        rougeL_recall=text_metrics.rouge_l(generation, item.answer, lang, measure="recall"), **asdict(scores))


@dataclass(frozen=True)
class EvalMeta:
    """What an evaluation ran, and what its views need to know.

    model: the base model's folder; backend: "vllm" or "hf"; models: per evaluated name, what is known of it (its
    adapter folder, adapter stack, and what its run folder says: job, method, data languages and modalities, fake
    languages, unlearning languages; `evaluate.describe_models`); probes / n_probes: per split, the folder of its
    probe file and its probe count; max_new_tokens: the generation limit (None: per probe, from its answer's
    length); mc_style: the multiple-choice prompt and parser ("offside" or "lenient"; None in results written
    before it was recorded, which used "lenient"); text_only: whether picture probes were dropped. For the views:
    fake_language (L), relearn_pairs {relearned model: unlearned model}, mia [member split, non-member split] and
    reference (the retain-only model for forget quality). versions, date and seconds: of the run.
    """

    model: str
    backend: str = ""
    models: dict[str, dict] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)
    n_probes: dict[str, int] = field(default_factory=dict)
    max_new_tokens: int | None = None
    mc_style: str | None = None
    text_only: bool = False
    fake_language: str | None = None
    relearn_pairs: dict[str, str] = field(default_factory=dict)
    mia: list[str] | None = None
    reference: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    date: str = ""
    seconds: float = 0.0

    def unlearn_languages(self) -> dict[str, list[str]]:
        """model -> its unlearning languages, for the models that have them."""
        return {m: info["unlearn_languages"] for m, info in self.models.items() if info.get("unlearn_languages")}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalMeta:
        return cls(**data)
