"""Multiple-choice probes: the prompt that turns an item with `options` into a lettered question, and the parser
that reads the letter back out of a generation. Two styles:

"offside" (the default): OFFSIDE's own (arXiv 2510.22535; github.com/zh121800/OFFSIDE, eval/eval_classi.py), so
    that multiple-choice accuracy is comparable with its tables. The prompt is the question, a blank line, then

        Please look at this image and answer the question by selecting the correct option from the choices below.

        Please respond with only the letter of the correct answer (e.g., 'The answer is A' or just 'A').

        Options:
        A: <option>
        ...
        D: <option>

    and a blank line (for an item without a picture the first sentence reads "Please answer the question by ...").
    The parser is OFFSIDE's `extract_answer`: the letter after the first "The answer is " / "the answer is " (one
    space, any A-D, even the first letter of a word: "The answer is Arsenal" reads A), else the letter when the
    whole generation is one A-D (a final newline allowed), else None. OFFSIDE's evaluation drops an empty
    generation from its count instead of scoring it wrong; `mc_counts` does the same.
"lenient": options as "A. <option>" and the instruction "Answer with the option's letter from the given choices
    directly."; the parser also reads "THE ANSWER IS **D**", "(C)", "B. Arsenal" (see `lenient_choice`) and counts
    an empty generation as wrong.
"""
import re
from dataclasses import replace

from obliviate.data.schema import Item
from obliviate.eval.options import MC_STYLES

MC_LETTERS = "ABCD"
MC_STYLE = "offside"
MC_MAX_NEW_TOKENS = 32  # OFFSIDE's --max_new_tokens for its multiple-choice evaluation

OFFSIDE_LOOK = ("Please look at this image and answer the question by selecting the correct option from the choices "
                "below.")
OFFSIDE_TEXT = "Please answer the question by selecting the correct option from the choices below."
OFFSIDE_RESPOND = "Please respond with only the letter of the correct answer (e.g., 'The answer is A' or just 'A')."
LENIENT_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def _style(style: str) -> str:
    if style not in MC_STYLES:
        raise ValueError(f"unknown multiple-choice style {style!r} (styles: {', '.join(MC_STYLES)})")
    return style


def mc_question(item: Item, *, style: str = MC_STYLE) -> str:
    """The lettered question of an item with options (A-D), in `style` (see the module docstring)."""
    if not item.options:
        raise ValueError(f"record {item.id}: no options for a multiple-choice probe")
    if len(item.options) > len(MC_LETTERS):
        raise ValueError(f"record {item.id}: {len(item.options)} options; the OFFSIDE parser reads A-D only")
    if _style(style) == "lenient":
        lines = [item.question] + [f"{MC_LETTERS[i]}. {o}" for i, o in enumerate(item.options)]
        return "\n".join(lines + [LENIENT_INSTRUCTION])
    options = "".join(f"{MC_LETTERS[i]}: {o}\n" for i, o in enumerate(item.options))
    first = OFFSIDE_LOOK if item.image is not None else OFFSIDE_TEXT
    return f"{item.question}\n\n{first}\n\n{OFFSIDE_RESPOND}\n\nOptions:\n{options}\n"


def mc_item(item: Item, *, style: str = MC_STYLE) -> Item:
    """The multiple-choice form of an item with options: `mc_question` as its question, id "{id}#mc". The gold
    letter is `mc_gold(item)`."""
    return replace(item, id=f"{item.id}#mc", question=mc_question(item, style=style), paraphrases=(), options=())


def mc_gold(item: Item) -> str:
    """The letter of the item's correct option (its `value`, else its whole answer)."""
    correct = item.value if item.value is not None else item.answer
    return MC_LETTERS[item.options.index(correct)]


_OFFSIDE_PHRASE = re.compile(r"[Tt]he answer is ([ABCD])")


def offside_choice(text: str) -> str | None:
    """OFFSIDE's `extract_answer`: the A-D letter right after the first "The answer is " or "the answer is ";
    else the text itself when it is one A-D letter, optionally followed by one newline; else None."""
    if not isinstance(text, str):
        raise TypeError(f"offside_choice: expected str, got {type(text).__name__}")
    m = _OFFSIDE_PHRASE.search(text)
    if m:
        return m.group(1)
    alone = text[:-1] if text.endswith("\n") else text
    return alone if len(alone) == 1 and alone in MC_LETTERS else None


_ANSWER_IS = re.compile(r"(?i:the\s+answer\s+is)\s*:?\s*[(\[*\"']*\s*([A-D])(?![A-Za-z0-9])")
_LONE = re.compile(r"^[(\[*\"'\s]*([A-D])[)\]*\"'.:,!\s]*$")
_LABEL = re.compile(r"^[*\s]*(?:\(([A-D])\)|([A-D])[.):])(?:\s|$)")


def lenient_choice(text: str) -> str | None:
    """The option letter a generation picks, or None. Rules, in order:
    1. the first "The answer is X" (phrase case-insensitive; optional ":" and opening "(", "[", "*", quotes before
       X) where X is an UPPERCASE A–D not followed by a letter or digit ("The answer is Arsenal" does not count);
    2. else a lone letter: the first non-empty line is just an uppercase A–D, possibly wrapped in ( ) [ ] ** or
       quotes and followed by . : , ! ("B", "(C)", "**D**", "A."), or the text starts with an option label
       "X." "X)" "(X)" "X:" followed by whitespace or the end ("B. Arsenal").
    A letter used as a word ("A player from Spain"), lowercase letters and E–Z give None."""
    if not isinstance(text, str):
        raise TypeError(f"lenient_choice: expected str, got {type(text).__name__}")
    m = _ANSWER_IS.search(text)
    if m:
        return m.group(1)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and (m := _LONE.match(lines[0])):
        return m.group(1)
    m = _LABEL.match(text.strip())
    return (m.group(1) or m.group(2)) if m else None


def parse_choice(text: str, *, style: str = MC_STYLE) -> str | None:
    """The letter a multiple-choice generation picks under `style`'s parser, or None."""
    return offside_choice(text) if _style(style) == "offside" else lenient_choice(text)


def mc_counts(generation: str, *, style: str = MC_STYLE) -> bool:
    """Whether a multiple-choice answer counts towards accuracy: OFFSIDE's evaluation skips empty generations
    (they are neither right nor wrong there); the lenient style counts every answer."""
    return _style(style) == "lenient" or generation != ""
