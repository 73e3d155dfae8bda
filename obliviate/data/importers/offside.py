"""OFFSIDE (arXiv 2510.22535; github.com/zh121800/OFFSIDE, data on Hugging Face zh1218001/OFFSIDE) -> items.

Two source layouts, both JSON arrays (JSON Lines also read):

- generation sets (retain/forget/relearn/test, ms-swift chat form):
      {"messages": [{"role": "user", "content": "<image>\\nI'm curious about the height of the player ..."},
                    {"role": "assistant", "content": "He stands at 1.89 meters tall."}],
       "images": "./finetune_set/364.jpg"}
  (`images` may also be a one-element list; text-only records have none.)
- multiple-choice sets (classification_*_set.json):
      {"Question": "...", "Options": {"A": "...", "B": "...", ...}, "Correct_Answer": "B", "images": "..."}
  (`image` is accepted for `images`, as OFFSIDE's evaluator does.)

Neither names the player or the question type, so both are inferred:
- attribute (and kind) from the question text, by the keyword rules in `ATTRIBUTES`, tried in order: OFFSIDE's 8
  shared attributes (the same on every image of a player: name, age, position, nationality, birth_date, height,
  foot, birthplace) and 6 private, image-specific ones (club_to = the club he is going to / shown playing for,
  club_from, transfer_date, transfer_fee, market_value, trophies). A question no rule matches is an error.
- entity (the player) from a `player` field if present, else from the name question asked about the same image
  (its answer "The player in the image is X." or its correct option), else, for text-only records, from a known
  player name written in the question (whole words, longest name first). `players_from` names another OFFSIDE
  file (either layout) whose name questions add to both: e.g. the complete set, for a selective-unlearning
  forget set without name questions, or for the text-only twin of a multimodal set.
- value (the fact inside the answer): generation answers are free sentences, so `VALUE_PATTERNS` pull the fact
  out ("He stands at 1.89 meters tall." -> "1.89"); value is None where no pattern matches. Multiple-choice items
  take answer = value = the correct option's text, options = all option texts in letter order (A, B, C, ...).

Images are resolved like OFFSIDE's own evaluator (relative to `image_root`, default the source file's folder,
falling back to the bare file name there) and copied to images/<their relative path> beside the output, so
`image` stays inside the output's folder. The `<image>` placeholders are removed from the question: the image
travels in `image`, and the chat template puts it before the question.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from obliviate.data.importers.common import Imported, Record, Track, make_item, read_records, same, slug
from obliviate.data.schema import DataError, check_picture

SHARED, PRIVATE = "shared", "private"

# (attribute, kind, question pattern); first match wins, so the specific rules come before the broad ones.
ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("market_value", PRIVATE, r"market value|\bworth\b"),
    ("trophies", PRIVATE, r"troph|\btitles?\b"),
    ("transfer_fee", PRIVATE, r"\bfee\b|transfer (?:details|cost|sum|price)|how much .*transfer"),
    ("transfer_date", PRIVATE, r"\bwhen\b.*\btransferr?(?:ed|ing)?\b|transfer (?:date|took place)"
                               r"|date of (?:the |his )?transfer"),
    ("club_from", PRIVATE, r"transferr?(?:ed|ing)? from|previous club|former club|came from|come from"
                           r"|club .*\bfrom\b|\bfrom which club"),
    ("club_to", PRIVATE, r"\bclub\b|\bteam\b|going to|will join|\bjoin(?:ing)?\b"),
    ("birthplace", SHARED, r"\bwhere\b.*\bborn\b|birth ?place|place of birth|home ?town"),
    ("birth_date", SHARED, r"\bborn\b|birth ?date|date of birth|birthday"),
    ("age", SHARED, r"how old|\bage\b"),
    ("height", SHARED, r"height|how tall|\btall\b"),
    ("foot", SHARED, r"\bfoot\b|footed"),
    ("nationality", SHARED, r"national|which country|what country"),
    ("position", SHARED, r"position|\brole\b|\bplays? as\b"),
    ("name", SHARED, r"\bwho\b|\bname\b|identif|identity"),
)
KIND = {name: kind for name, kind, _ in ATTRIBUTES}

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = (rf"{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}"
         r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}")
_MONEY = (r"[€£$]\s?\d[\d.,]*(?:\s?(?:million|billion|thousand|mil|bn|m|k)\b)?"
          r"|\d[\d.,]*\s?(?:million|billion|thousand|bn|m|k)\b(?:\s?(?:euros?|pounds?))?"
          r"|\bfree(?: transfer)?\b|\bon loan\b|\bloan\b")
# What trails a sentence's fact and is no part of it.
_TAIL = r"(?:\s+(?:at|during|in) (?:that|the) (?:time|period)|\s+in (?:this|the) image)?[.!\s]*$"
# attribute -> patterns whose group 'v' is the fact; tried in order on the answer (case-insensitive).
VALUE_PATTERNS: dict[str, tuple[str, ...]] = {
    "name": (rf"^.*\bis\s+(?P<v>[^.!?]+?){_TAIL}",),
    "age": (r"(?P<v>\d{1,2})\s*(?:years?|yrs?)\b",),
    "position": (rf"^.*\b(?:as|of|is)\s+(?:an?\s+|the\s+)?(?P<v>[^.!?]+?){_TAIL}",),
    "nationality": (rf"^.*\b(?:from|is)\s+(?:an?\s+)?(?P<v>[^.!?]+?){_TAIL}",),
    "birth_date": (rf"(?P<v>{_DATE})",),
    "height": (r"(?P<v>\d[.,]\d{1,2})\s*(?:m\b|meters?|metres?)", r"(?P<v>\d{3})\s*cm\b"),
    "foot": (r"\b(?P<v>right|left|both)\b",),
    "birthplace": (rf"^.*\b(?:in|from)\s+(?P<v>[^.!?]+?){_TAIL}",),
    "club_to": (rf"^.*\b(?:for|with|join(?:s|ed|ing)?|representing|to)\s+(?P<v>[^.!?]+?){_TAIL}",),
    "club_from": (rf"^.*\bfrom\s+(?P<v>[^.!?]+?){_TAIL}",),
    "transfer_date": (rf"(?P<v>{_DATE})",),
    "transfer_fee": (rf"(?P<v>{_MONEY})",),
    "market_value": (rf"(?P<v>{_MONEY})",),
    "trophies": (r"(?P<v>\d+|no)\s+(?:major\s+)?troph",),
}
_SHORT = 4  # an answer of at most this many words that no pattern reads is taken whole ("Liverpool.")


def attribute_of(question: str) -> str | None:
    """The OFFSIDE attribute a question asks for, or None."""
    q = question.lower()
    return next((name for name, _, pattern in ATTRIBUTES if re.search(pattern, q)), None)


def value_of(attribute: str, answer: str) -> str | None:
    """The fact's span inside a free-form answer (verbatim), or None where no pattern reads it."""
    for pattern in VALUE_PATTERNS[attribute]:
        m = re.search(pattern, answer, flags=re.IGNORECASE)
        if m and m.group("v").strip():
            return m.group("v").strip()
    short = answer.strip().rstrip(".!")
    return short if short and len(short.split()) <= _SHORT else None


def clean_question(text: str) -> str:
    """Drop the `<image>` placeholders: "... shown in <image>." -> "... shown in the image.", "... in this
    image: <image>" -> "... in this image", any other one removed; then tidy the spaces left."""
    q = re.sub(r":\s*<image>", " ", text)
    q = re.sub(r"\b(in|of|at|on|from)\s+<image>", r"\1 the image", q, flags=re.IGNORECASE)
    q = re.sub(r"\s+", " ", q.replace("<image>", " ")).strip()
    return re.sub(r"\s+([.,;:?!])", r"\1", q)


def _text(rec: Record, content) -> str:
    """A chat turn's text: a string, or the text parts of a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if parts:
            return " ".join(parts)
    raise rec.fail("a message's 'content' must be a string or a list of text parts")


def _image_field(rec: Record) -> str | None:
    key = "images" if "images" in rec.data else "image"
    paths = rec.strings(key)
    if len(paths) > 1:
        raise rec.fail(f"{len(paths)} images in one record (one is supported)")
    return paths[0] if paths else None


class _Parsed:
    """A record reduced to what both layouts share."""

    def __init__(self, rec, question, answer, value, image, options=()):
        self.rec, self.question, self.answer, self.value, self.image = rec, question, answer, value, image
        self.options = tuple(options)
        self.attribute = attribute_of(question)
        if self.attribute is None:
            raise rec.fail(f"cannot tell which attribute the question asks for: {question!r}")
        if self.value is None and not self.options:
            self.value = value_of(self.attribute, answer)
        self.player = rec.get("player", required=False)


def _parse_chat(rec: Record) -> _Parsed:
    messages = rec.get("messages", list)
    turns = [(m.get("role"), m.get("content")) for m in messages if isinstance(m, dict)]
    if len(turns) != len(messages):
        raise rec.fail("'messages' must hold objects with 'role' and 'content'")
    turns = [t for t in turns if t[0] != "system"]
    if [r for r, _ in turns] != ["user", "assistant"]:
        raise rec.fail(f"'messages' must be one user turn then one assistant turn, got roles {[r for r, _ in turns]}")
    question = clean_question(_text(rec, turns[0][1]))
    answer = _text(rec, turns[1][1]).strip()
    if not question or not answer:
        raise rec.fail("empty question or answer")
    return _Parsed(rec, question, answer, None, _image_field(rec))


def _parse_choice(rec: Record) -> _Parsed:
    question = clean_question(rec.get("Question"))
    raw = rec.get("Options", (dict, list))
    if isinstance(raw, dict):
        letters = sorted(raw)
        if letters != [chr(65 + i) for i in range(len(letters))]:
            raise rec.fail(f"'Options' keys must be the letters A, B, C, ... in turn, got {letters}")
        options = [raw[k] for k in letters]
    else:
        letters, options = [chr(65 + i) for i in range(len(raw))], raw
    if len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise rec.fail("'Options' must hold at least two non-empty strings")
    options = [o.strip() for o in options]
    correct = rec.get("Correct_Answer").strip()
    if correct.upper() in letters:
        answer = options[letters.index(correct.upper())]
    elif correct in options:
        answer = correct
    else:
        raise rec.fail(f"'Correct_Answer' {correct!r} is neither an option letter ({', '.join(letters)}) "
                       "nor an option's text")
    return _Parsed(rec, question, answer, answer, _image_field(rec), options)


def _parse_any(rec: Record) -> _Parsed:
    return _parse_choice(rec) if "Question" in rec.data else _parse_chat(rec)


def _key(image: str) -> str:
    """An image path as written, normalised so that "./a/1.jpg" and "a/1.jpg" match."""
    return PurePosixPath(image.replace("\\", "/")).as_posix()


def _players(parsed: list[_Parsed], into: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Map each image to the player its name question (or `player` field) names: image -> (name, where)."""
    for p in parsed:
        name = p.player or (p.value if p.attribute == "name" else None)
        if p.image is not None and name:
            seen = into.setdefault(_key(p.image), (name, p.rec.where))
            if seen[0] != name:
                raise p.rec.fail(f"image {p.image!r} shows {name!r} here but {seen[0]!r} in {seen[1]}")
    return into


def known_players(path: str | Path) -> dict[str, tuple[str, str]]:
    """The players an OFFSIDE file (either layout) names, by image: image path -> (name, where)."""
    return _players([_parse_any(rec) for rec in read_records(path)], {})


def _convert(records, parse, *, src, image_root, players_from, track, form) -> Imported:
    parsed = [parse(rec) for rec in records]
    by_image = _players(parsed, known_players(players_from) if players_from is not None else {})
    names = [(n, re.compile(rf"(?<!\w){re.escape(n)}(?!\w)", re.IGNORECASE))  # "Gabriel Jesus" before "Gabriel"
             for n in sorted({n for n, _ in by_image.values()}, key=len, reverse=True)]

    root = Path(image_root) if image_root is not None else Path(src).parent
    out = Imported()
    counts: dict[str, int] = {}
    planned: dict[str, str] = {}
    for p in track(parsed):
        entity = p.player or (by_image.get(_key(p.image), (None,))[0] if p.image else None)
        if entity is None and p.image is None:
            entity = next((n for n, pattern in names if pattern.search(p.question)), None)
        if entity is None:
            raise p.rec.fail("cannot tell which player this is: no 'player' field, "
                             + ("and no name question about its image (see players_from)" if p.image else
                                "no image, and no known player name in the question (see players_from)"))
        image = _copy_image(p, root, out, planned) if p.image else None
        where = slug(PurePosixPath(p.image).stem) if p.image else "text"
        base = f"{slug(entity)}.{p.attribute}.en.{form}-{where}"
        counts[base] = counts.get(base, 0) + 1
        out.add(p.rec, make_item(
            p.rec, id=base if counts[base] == 1 else f"{base}-{counts[base]}", entity=entity,
            attribute=p.attribute, kind=KIND[p.attribute], language="en", question=p.question, answer=p.answer,
            value=p.value, image=image, options=p.options))
    return out


def _copy_image(p: _Parsed, root: Path, out: Imported, planned: dict[str, str]) -> str:
    """Find the record's image and plan its copy to images/<its relative path>; returns that path.
    `planned` remembers each image path as written, so every image is looked up once."""
    if p.image in planned:
        return planned[p.image]
    raw = PurePosixPath(p.image.replace("\\", "/"))
    inside = root.resolve()
    found = next((c for c in (root / raw, root / raw.name) if c.is_file() and c.resolve().is_relative_to(inside)),
                 None)  # only files inside the image root, symlinks resolved: a record cannot pull in /etc/...
    if found is None:
        raise p.rec.fail(f"image {p.image!r} not found under {root}"
                         + (" (paths leaving it are not followed)" if (root / raw).is_file() else ""))
    try:
        check_picture(found, p.image)
    except DataError as err:
        raise p.rec.fail(str(err)) from None
    rel = "images/" + (raw.name if raw.is_absolute() or ".." in raw.parts else raw.as_posix())
    other = out.files.setdefault(rel, found)
    if other.resolve() != found.resolve():
        raise p.rec.fail(f"images {str(other)!r} and {str(found)!r} would both be copied to {rel!r}")
    planned[p.image] = rel
    return rel


def convert_offside(records: list[Record], *, src: str | Path, image_root: str | Path | None = None,
                    players_from: str | Path | None = None, track: Track = same) -> Imported:
    """OFFSIDE generation records (chat `messages` + `images`) -> items (see the module docstring)."""
    return _convert(records, _parse_chat, src=src, image_root=image_root, players_from=players_from,
                    track=track, form="gen")


def convert_offside_mc(records: list[Record], *, src: str | Path, image_root: str | Path | None = None,
                       players_from: str | Path | None = None, track: Track = same) -> Imported:
    """OFFSIDE multiple-choice records (`Question`, `Options`, `Correct_Answer`, `images`) -> items."""
    return _convert(records, _parse_choice, src=src, image_root=image_root, players_from=players_from,
                    track=track, form="mc")
