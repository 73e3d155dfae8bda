"""Multiple-choice probes (OFFSIDE, arXiv 2510.22535): the prompt that turns an item with `options` into a lettered
question, and the parser that reads the letter back out of a generation."""
import re
from dataclasses import replace

from obliviate.data.schema import Item

MC_LETTERS = "ABCD"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def mc_item(item: Item) -> Item:
    """The multiple-choice form of an item with options (OFFSIDE): the question, the options lettered A-D, and an
    instruction to answer with the letter. The gold letter is `mc_gold(item)`."""
    if not item.options:
        raise ValueError(f"record {item.id}: no options for a multiple-choice probe")
    if len(item.options) > len(MC_LETTERS):
        raise ValueError(f"record {item.id}: {len(item.options)} options; the OFFSIDE parser reads A-D only")
    lines = [item.question] + [f"{MC_LETTERS[i]}. {o}" for i, o in enumerate(item.options)] + [MC_INSTRUCTION]
    return replace(item, id=f"{item.id}#mc", question="\n".join(lines), paraphrases=(), options=())


def mc_gold(item: Item) -> str:
    """The letter of the item's correct option (its `value`, else its whole answer)."""
    correct = item.value if item.value is not None else item.answer
    return MC_LETTERS[item.options.index(correct)]


_ANSWER_IS = re.compile(r"(?i:the\s+answer\s+is)\s*:?\s*[(\[*\"']*\s*([A-D])(?![A-Za-z0-9])")
_LONE = re.compile(r"^[(\[*\"'\s]*([A-D])[)\]*\"'.:,!\s]*$")
_LABEL = re.compile(r"^[*\s]*(?:\(([A-D])\)|([A-D])[.):])(?:\s|$)")


def parse_choice(text):
    """The option letter a generation picks, or None. Rules, in order (OFFSIDE's parser, made precise):
    1. the first "The answer is X" (phrase case-insensitive; optional ":" and opening "(", "[", "*", quotes before
       X) where X is an UPPERCASE A–D not followed by a letter or digit ("The answer is Arsenal" does not count);
    2. else a lone letter: the first non-empty line is just an uppercase A–D, possibly wrapped in ( ) [ ] ** or
       quotes and followed by . : , ! ("B", "(C)", "**D**", "A."), or the text starts with an option label
       "X." "X)" "(X)" "X:" followed by whitespace or the end ("B. Arsenal").
    A letter used as a word ("A player from Spain"), lowercase letters and E–Z give None."""
    if not isinstance(text, str):
        raise TypeError(f"parse_choice: expected str, got {type(text).__name__}")
    m = _ANSWER_IS.search(text)
    if m:
        return m.group(1)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and (m := _LONE.match(lines[0])):
        return m.group(1)
    m = _LABEL.match(text.strip())
    return (m.group(1) or m.group(2)) if m else None
