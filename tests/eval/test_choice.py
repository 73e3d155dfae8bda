"""Multiple-choice probes: OFFSIDE's prompt and parser (the default) and the lenient ones.

The OFFSIDE table gives, for each string, the letter OFFSIDE's own `extract_answer` (github.com/zh121800/OFFSIDE,
eval/eval_classi.py: `re.search` of "[Tt]he answer is ([A-D])", then of "^([A-D])$") returns for it."""
import pytest

from obliviate.data.schema import Item
from obliviate.eval.choice import (LENIENT_INSTRUCTION, lenient_choice, mc_counts, mc_gold, mc_item, mc_question,
                                   offside_choice, parse_choice)

OFFSIDE_ANSWERS = [
    ("The answer is B.", "B"),
    ("So the answer is C", "C"),
    ("The answer is B. No wait, the answer is C.", "B"),   # the first statement wins
    ("The answer is B and the answer is A", "B"),
    ("The answer is Arsenal", "A"),                        # no word boundary: the A of Arsenal
    ("the answer is Dortmund", "D"),
    ("the answer is A: Ari Lund-Okafor", "A"),
    ("Let me think. the answer is: (C) Chelsea", None),    # ":" and "(" are not allowed before the letter
    ("The answer is (A)", None),
    ("THE ANSWER IS **D**", None),                         # only "The"/"the", the rest lowercase
    ("The Answer is B", None),
    ("The answer is  B", None),                            # exactly one space
    ("The answer is\nB", None),
    ("the answer isB", None),
    ("Theanswer is B", None),
    ("The answer is E", None),
    ("the answer is b", None),
    ("B", "B"), ("B\n", "B"),                              # "$" also matches before one final newline
    ("B\n\n", None), ("\nB", None), (" B", None), ("B ", None),
    ("(C)", None), ("**D**", None), ("A.", None), ("AB", None), ("A\nB", None), ("c", None), ("E", None),
    ("Ｂ", None),                                           # a full-width letter is not A-D
    (" B \n\nBecause he moved.", None), ("B. Arsenal", None), ("(A) Arsenal", None), ("C) Chelsea", None),
    ("D: Spain", None), ("Answer: C", None), ("A player from Spain", None), ("I think (B) Arsenal", None),
    ("", None), ("   ", None),
]


@pytest.mark.parametrize("text, want", OFFSIDE_ANSWERS)
def test_offside_parser_reproduces_extract_answer(text, want):
    assert offside_choice(text) == want
    assert parse_choice(text) == want  # the default style


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
def test_lenient_parser(text, want):
    assert lenient_choice(text) == want
    assert parse_choice(text, style="lenient") == want


def test_the_parsers_read_different_letters():
    texts = [t for t, _ in OFFSIDE_ANSWERS]
    assert sum(offside_choice(t) is not None for t in texts) == 9
    assert sum(lenient_choice(t) is not None for t in texts) == 27
    assert sum(offside_choice(t) != lenient_choice(t) for t in texts) == 22  # "Arsenal" -> A vs None, ...
    with pytest.raises(ValueError, match="style"):
        parse_choice("B", style="strict")
    with pytest.raises(TypeError):
        offside_choice(None)


CLUB = Item(id="x", entity="p", attribute="club", kind="shared", language="en", question="Which club?",
            answer="He plays for Fulham.", value="Fulham", options=("Arsenal", "Fulham", "Everton"))


def test_offside_prompt():
    assert mc_question(CLUB) == (
        "Which club?\n\nPlease answer the question by selecting the correct option from the choices below.\n\n"
        "Please respond with only the letter of the correct answer (e.g., 'The answer is A' or just 'A').\n\n"
        "Options:\nA: Arsenal\nB: Fulham\nC: Everton\n\n")
    pictured = Item(**{**CLUB.to_dict(), "image": "p.png"})
    assert mc_question(pictured).split("\n\n")[1] == (
        "Please look at this image and answer the question by selecting the correct option from the choices below.")
    mc = mc_item(CLUB)
    assert mc.id == "x#mc" and mc.question == mc_question(CLUB) and mc.options == () and mc_gold(CLUB) == "B"


def test_lenient_prompt_and_errors():
    mc = mc_item(CLUB, style="lenient")
    assert mc.question.splitlines() == ["Which club?", "A. Arsenal", "B. Fulham", "C. Everton", LENIENT_INSTRUCTION]
    five = Item(id="y", entity="p", attribute="club", kind="shared", language="en", question="q", answer="a b",
                value="a", options=("a", "b", "c", "d", "e"))
    with pytest.raises(ValueError, match="A-D"):
        mc_item(five)
    with pytest.raises(ValueError, match="no options"):
        mc_item(Item(id="z", entity="p", attribute="club", kind="shared", language="en", question="q", answer="a"))
    with pytest.raises(ValueError, match="style"):
        mc_item(CLUB, style="offside ")


def test_offside_skips_empty_answers():
    assert mc_counts("B") and mc_counts("I don't know") and not mc_counts("")
    assert mc_counts("", style="lenient")
