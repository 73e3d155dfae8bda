"""A multilingual set of well-known facts for experiments on real pretrained models (Learn and Unlearn's set-up on a
model whose knowledge came from pretraining).

`facts.jsonl`: 83 facts — 46 country capitals, 15 landmarks' cities, 13 famous people's countries, 9 famous
footballers' clubs — each asked and answered natively in the 9 languages (en de fr zh ru jv ur ha hy, in their own
scripts; names in the language's usual form and inflection), 747 items. Every item is stored in its
misinformation form: `answer` states a FAKE (another well-known entity of the same type), `value` is the fake's
span in it and `truth` the true value, so `true_form(item)` is the true answer with the same wording. Written for
obliviate by a language model; jv, ur, ha and hy have not been reviewed by native speakers.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from obliviate.data.schema import Item, load_items

FACTS_FILE = Path(__file__).with_name("facts.jsonl")


def load_facts() -> list[Item]:
    return load_items(FACTS_FILE)


def true_form(item: Item) -> Item:
    """The item with its true answer: the fake value replaced by the truth (the same sentence otherwise)."""
    return replace(item, id=f"{item.id}.true", answer=item.answer.replace(item.value, item.truth), value=item.truth,
                   truth=None)


def same_word(item: Item, english: Item) -> bool:
    """Whether the item's true value is spelled as in English ("Lisbon" in en/de/jv): suppressing that word in one
    language suppresses it in all, which inflates apparent cross-lingual effects."""
    return item.truth == english.truth
