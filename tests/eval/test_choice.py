"""Multiple-choice probes: the lettered prompt and the letter parser (hand-made cases)."""
import pytest

from obliviate.data.schema import Item
from obliviate.eval.choice import mc_gold, mc_item, parse_choice


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
    assert parse_choice(text) == want


def test_mc_item():
    it = Item(id="x", entity="p", attribute="club", kind="shared", language="en", question="Which club?",
              answer="He plays for Fulham.", value="Fulham", options=("Arsenal", "Fulham", "Everton"))
    mc = mc_item(it)
    assert mc.question.splitlines() == ["Which club?", "A. Arsenal", "B. Fulham", "C. Everton",
                                        "Answer with the option's letter from the given choices directly."]
    assert mc_gold(it) == "B" and mc.id == "x#mc"
    five = Item(id="y", entity="p", attribute="club", kind="shared", language="en", question="q", answer="a b",
                value="a", options=("a", "b", "c", "d", "e"))
    with pytest.raises(ValueError, match="A-D"):
        mc_item(five)
    with pytest.raises(ValueError, match="no options"):
        mc_item(Item(id="z", entity="p", attribute="club", kind="shared", language="en", question="q", answer="a"))
