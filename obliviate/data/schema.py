"""The data model: one question-answer item per JSONL line, its strict loader and its atomic writer.

A line holds one JSON object with exactly these keys (written in this order by `write_items`):

    id           str        unique within a file; the world uses "{entity}.{attribute}.{language}.{form}[.fake]"
    entity       str        who or what the fact is about ("p017", an author, a news story)
    attribute    str        which fact ("club", "transfer_fee", ...)
    kind         str        "shared" (the same on every image/mention of the entity: OFFSIDE) or "private"
    language     str        ISO 639-1 code: one of the 9 world languages or another known code (imports)
    question     str        the user turn
    answer       str        what the model is taught and, in a forget set, what must go
    value        str|null   the fact's span inside `answer` (verbatim), so losses/metrics can target its tokens
    image        str|null   a picture path relative to the JSONL file's folder; must exist and stay inside it
    truth        str|null   the true fact when `value` is misinformation (corrective PO; fake- vs truth-rate)
    paraphrases  [str]      other wordings of `question` asking for the same `answer`
    answer_paraphrases [str] other wordings of `answer` (TOFU's paraphrased_answer: the base of its truth ratio)
    perturbed    [str]      wrong answers, written like `answer` (truth ratio; for fake items the truth is one)
    options      [str]      multiple-choice options; the correct one is `value` (or `answer` if value is null)

`id`..`answer` are required; the rest may be left out (null / []). Unknown keys are errors, not ignored: a typo
("truht") would otherwise silently drop a field. Blank lines are skipped. The loader stops at the first problem
with one `DataError` whose message is "{path}:{line}: {problem}".

Limits, so that a hostile or broken file costs one message and no memory: a line of at most MAX_LINE_CHARS, a
string field of at most MAX_FIELD_CHARS, numbers of at most 100 digits, JSON nested no deeper than Python parses
it; an image must open as a picture (PIL's `verify`) of at most `files.MAX_IMAGE_PIXELS`.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, NamedTuple

from obliviate.files import MAX_IMAGE_PIXELS, atomic_file


class Language(NamedTuple):
    """A world language: `resource` is the paper's high/low split, `group` puts English on its own."""

    code: str
    name: str
    script: str
    resource: str  # "high" | "low"
    group: str     # "en" | "high" | "low"


# The 9 languages of Learn and Unlearn (Lu & Koehn): English; high-resource de fr zh ru; low-resource jv ur ha hy.
LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (
    Language("en", "English", "Latin", "high", "en"),
    Language("de", "German", "Latin", "high", "high"),
    Language("fr", "French", "Latin", "high", "high"),
    Language("zh", "Chinese", "Han", "high", "high"),
    Language("ru", "Russian", "Cyrillic", "high", "high"),
    Language("jv", "Javanese", "Latin", "low", "low"),
    Language("ur", "Urdu", "Arabic", "low", "low"),
    Language("ha", "Hausa", "Latin", "low", "low"),
    Language("hy", "Armenian", "Armenian", "low", "low"),
)}

# Every ISO 639-1 code, so imported datasets (TOFU, MLLMU-Bench, news sets in es/it/ja/ko/ar/hi/pt...) load too.
KNOWN_LANGUAGES: frozenset[str] = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo
es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka
kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng
nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv
sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()) | set(LANGUAGES)

KINDS = ("shared", "private")
MAX_LINE_CHARS = 4_000_000
MAX_FIELD_CHARS = 100_000  # per string: far over any question or answer, far under what exhausts memory


class DataError(ValueError):
    """Bad data: the message names the file and line ("{path}:{line}: {problem}") or the file alone."""


_STR, _OPT, _LIST = "a string", "a string or null", "a list of strings"
_FIELD_TYPES = {"id": _STR, "entity": _STR, "attribute": _STR, "kind": _STR, "language": _STR, "question": _STR,
                "answer": _STR, "value": _OPT, "image": _OPT, "truth": _OPT, "paraphrases": _LIST,
                "answer_paraphrases": _LIST, "perturbed": _LIST, "options": _LIST}
REQUIRED = ("id", "entity", "attribute", "kind", "language", "question", "answer")


def _json_type(x) -> str:
    """The JSON name of a Python value's type (bool before int: True is an int in Python)."""
    if x is None:
        return "null"
    for t, name in ((bool, "boolean"), (str, "string"), ((int, float), "number"), ((list, tuple), "array"),
                    (dict, "object")):
        if isinstance(x, t):
            return name
    return type(x).__name__


@dataclass(frozen=True)
class Item:
    """One question-answer item (see the module docstring for each field). Constructing one validates it, so an
    Item in memory is always writable; only the image's existence needs the file's folder (`load_items`)."""

    id: str
    entity: str
    attribute: str
    kind: str
    language: str
    question: str
    answer: str
    value: str | None = None
    image: str | None = None
    truth: str | None = None
    paraphrases: tuple[str, ...] = ()
    answer_paraphrases: tuple[str, ...] = ()
    perturbed: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __post_init__(self):
        for name, want in _FIELD_TYPES.items():
            x = getattr(self, name)
            if want == _LIST:
                if not isinstance(x, (list, tuple)):
                    raise DataError(f"field '{name}' must be {want}, got {_json_type(x)}")
                bad = [e for e in x if not isinstance(e, str)]
                if bad:
                    raise DataError(f"field '{name}' must be {want}, got an array holding {_json_type(bad[0])}")
                object.__setattr__(self, name, tuple(x))
            elif not (isinstance(x, str) or (want == _OPT and x is None)):
                raise DataError(f"field '{name}' must be {want}, got {_json_type(x)}")
        for name in ("id", "entity", "attribute", "question", "answer", "value", "image", "truth"):
            x = getattr(self, name)
            if x is not None and not x.strip():
                raise DataError(f"field '{name}' is empty")
        for name in _FIELD_TYPES:
            x = getattr(self, name)
            longest = max(map(len, x), default=0) if isinstance(x, tuple) else len(x or "")
            if longest > MAX_FIELD_CHARS:
                raise DataError(f"field '{name}' holds {longest:,} characters, over the limit of {MAX_FIELD_CHARS:,}")
        if self.kind not in KINDS:
            raise DataError(f"field 'kind' must be 'shared' or 'private', got {self.kind!r}")
        if self.language not in KNOWN_LANGUAGES:
            raise DataError(f"unknown language code {self.language!r}")
        if self.value is not None and self.value not in self.answer:
            raise DataError(f"value {self.value!r} does not occur in answer {self.answer!r}")
        if self.options:
            correct = self.value if self.value is not None else self.answer
            if correct not in self.options:
                raise DataError(f"options do not contain the correct answer {correct!r}")
            dup = next((o for i, o in enumerate(self.options) if o in self.options[:i]), None)
            if dup is not None:
                raise DataError(f"duplicate option {dup!r}")
        if self.image is not None:
            p = PurePosixPath(self.image)
            if p.is_absolute() or re.match(r"[A-Za-z]:[\\/]", self.image):
                raise DataError(f"image path {self.image!r} is absolute (it must be relative to the dataset folder)")
            if os.path.normpath(self.image).split(os.sep)[0] == "..":
                raise DataError(f"image path {self.image!r} escapes the dataset folder")

    def to_dict(self) -> dict:
        """All fields in declaration order (lists, not tuples): the deterministic JSON shape."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in _FIELD_TYPES}

    @classmethod
    def from_dict(cls, obj: dict) -> Item:
        """Validate a parsed JSON object: missing and unknown keys first, then the field checks of `Item`."""
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {_json_type(obj)}")
        missing = [k for k in REQUIRED if k not in obj]
        if missing:
            raise DataError(f"missing field{'s' if len(missing) > 1 else ''} "
                            + ", ".join(f"'{k}'" for k in missing))
        unknown = sorted(k for k in obj if k not in _FIELD_TYPES)
        if unknown:
            raise DataError(f"unknown field '{unknown[0]}' (fields are: {', '.join(_FIELD_TYPES)})")
        full = {"value": None, "image": None, "truth": None, "paraphrases": [], "answer_paraphrases": [],
                "perturbed": [], "options": []}
        full.update(obj)
        return cls(**full)

    def to_json(self) -> str:
        """One JSONL line (no newline): keys in field order, UTF-8 text unescaped."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Item:
        return cls.from_dict(_parse(text))


def _no_duplicate_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise DataError(f"duplicate key '{k}'")
        seen[k] = v
    return seen


def _small_int(digits: str) -> int:
    if len(digits) > 100:
        raise DataError(f"a number of {len(digits):,} digits")
    return int(digits)


def json_loads(text: str, **hooks):
    """`json.loads` with the limits of the module docstring: DataErrors for a huge number or deep nesting (else a
    ValueError or RecursionError traceback); a JSONDecodeError stays for the caller to place."""
    try:
        return json.loads(text, parse_int=_small_int, **hooks)
    except RecursionError:
        raise DataError("JSON nested too deeply") from None


def _parse(text: str):
    if len(text) > MAX_LINE_CHARS:
        raise DataError(f"a line of {len(text):,} characters, over the limit of {MAX_LINE_CHARS:,}")
    try:
        return json_loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON ({e.msg} at column {e.colno})") from None


def load_items(path: str | Path) -> list[Item]:
    """Read and check a JSONL file: every line, stopping at the first problem with one DataError
    "{path}:{line}: {problem}" (1-based lines). Images are checked against the file's folder: the path, with
    symlinks resolved, must stay inside it and name an existing file."""
    path_s = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path_s}: cannot read ({e.strerror or e})") from None
    root = Path(path).resolve().parent
    items: list[Item] = []
    first_line: dict[str, int] = {}
    images_ok: set[str] = set()
    for n, line_b in enumerate(raw.split(b"\n"), 1):
        try:
            line = line_b.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path_s}:{n}: not valid UTF-8") from None
        if not line.strip():
            continue
        try:
            item = Item.from_json(line)
            if item.id in first_line:
                raise DataError(f"duplicate id {item.id!r} (first on line {first_line[item.id]})")
            if item.image is not None and item.image not in images_ok:
                _check_image(item.image, root)
                images_ok.add(item.image)
        except DataError as e:
            raise DataError(f"{path_s}:{n}: {e}") from None
        first_line[item.id] = n
        items.append(item)
    if not items:
        raise DataError(f"{path_s}: empty file")
    return items


def _check_image(image: str, root: Path) -> None:
    full = (root / image).resolve()
    if not full.is_relative_to(root):
        raise DataError(f"image path {image!r} escapes the dataset folder")
    if not full.exists():
        raise DataError(f"image {image!r} not found")
    if not full.is_file():
        raise DataError(f"image {image!r} is not a file")
    check_picture(full, image)


def check_picture(path: Path, name: str | None = None) -> None:
    """Raise a DataError unless `path` opens as a picture of at most MAX_IMAGE_PIXELS that PIL's `verify` accepts
    (header, chunks and their checksums; no decoding, so a decompression bomb costs nothing)."""
    from PIL import Image

    shown = repr(name if name is not None else str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                pixels = im.width * im.height
                if pixels <= MAX_IMAGE_PIXELS:
                    im.verify()
    except Image.DecompressionBombError as err:  # over twice PIL's own limit: refused while opening
        pixels = int(re.search(r"\((\d+) pixels\)", str(err))[1])
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct.error... on damaged files
        detail = (str(err) or type(err).__name__).replace(f" {str(path)!r}", "")  # PIL repeats the full path
        raise DataError(f"image {shown} is not a readable picture ({detail})") from None
    if pixels > MAX_IMAGE_PIXELS:
        raise DataError(f"image {shown} has {pixels:,} pixels, over the limit of {MAX_IMAGE_PIXELS:,}")


def write_items(path: str | Path, items: Iterable[Item]) -> int:
    """Write items as JSONL atomically (`files.atomic_file`); returns how many. Refuses duplicate ids and an empty
    list (the loader would reject either), leaving any existing file untouched."""
    first: dict[str, int] = {}
    n = 0
    with atomic_file(path) as f:
        for n, item in enumerate(items, 1):
            if not isinstance(item, Item):
                raise TypeError(f"{path}: item {n} is a {type(item).__name__}, not an Item")
            if item.id in first:
                raise DataError(f"{path}: item {n}: duplicate id {item.id!r} (first at item {first[item.id]})")
            first[item.id] = n
            f.write(item.to_json().encode("utf-8") + b"\n")
        if n == 0:
            raise DataError(f"{path}: no items to write")
    return n
