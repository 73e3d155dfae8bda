"""TOFU (Maini et al. 2024, arXiv 2401.06121; github.com/locuslab/tofu, Hugging Face locuslab/TOFU) -> items.

TOFU's files are JSON Lines despite the .json name (a JSON array is read too), one question-answer pair a line:

    full / retain90|95|99 / forget01|05|10 / holdout*:   {"question", "answer"}
    *_perturbed (forget, retain, real_authors, world_facts) add:
        "paraphrased_answer": str (forget/retain only), "paraphrased_question": str (forget/retain only),
        "perturbed_answer": [str]

Mapping: language en, value None (answers are free sentences, so evaluation measures them by ROUGE-L recall),
answer_paraphrases = [paraphrased_answer] (the base of TOFU's truth ratio), paraphrases = [paraphrased_question]
(other wordings of the *question*), perturbed = perturbed_answer.

Labels are never guessed silently; each choice is said in `Imported.notes` (printed by `obliviate import`):
- kind: "private" for TOFU's 200 fictitious authors (a biography that must be forgettable on request), "shared"
  for its real_authors / world_facts sets (public knowledge, the utility probes). `kind` sets it; otherwise it
  comes from a TOFU file name (forgetNN, retainNN, retain, full, holdoutNN -> private; real_authors, world_facts
  -> shared, each with an optional "_perturbed"); any other file name needs `kind`.
- entity: the record's own `task_id` (an author's index, or a name for the group) when records have one, else its
  `name` (the author), else, for private records, the position: 200 authors x 20 questions in author order, so
  author = first_author + index // 20. `first_author` defaults from the file name: forgetNN holds the last 2*NN
  authors (forget01: 198-199), retainNN the first 2*NN, full all 200; a file named so holds at most that many
  records, and a `first_author` that contradicts its name is an error. Other files (retain_perturbed, holdoutNN,
  renamed ones) need `first_author`. Shared records are each their own entity ("world_facts_007").
- attribute: "qNN", the record's place among its entity's records ("fact" for ungrouped shared records).
Entity ids are "tofu_author_NNN" (an author index), "tofu_author_<slug>" (a task_id or name that is not a
number), or "<set>_NNN" for shared records, <set> being real_authors, world_facts or the file's stem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from obliviate.data.importers.common import Imported, Record, Track, make_item, same, slug

AUTHORS, PER_AUTHOR = 200, 20
KINDS = ("private", "shared")
_SHARED_SETS = ("real_authors", "world_facts")


@dataclass(frozen=True)
class TofuFile:
    """What a TOFU file name says: its set (`name`), the kind of its records, and for author files the first
    author and how many authors it holds (None where the name does not tell). `path`: the file, for messages."""

    path: str
    name: str
    kind: str | None
    first_author: int | None = None
    authors: int | None = None


def tofu_file(src: str | Path) -> TofuFile:
    """Read a TOFU file name ("forget01_perturbed.json" -> forget01: private, authors 198-199)."""
    path, stem = str(src), Path(src).name.split(".")[0].removesuffix("_perturbed")
    if stem in _SHARED_SETS:
        return TofuFile(path, stem, "shared")
    if m := re.fullmatch(r"(forget|retain)(\d\d)", stem):
        n = 2 * int(m.group(2))
        return TofuFile(path, stem, "private", AUTHORS - n if m.group(1) == "forget" else 0, n)
    if stem == "full":
        return TofuFile(path, stem, "private", 0, AUTHORS)
    if stem == "retain" or re.fullmatch(r"holdout\d\d", stem):
        return TofuFile(path, stem, "private")
    return TofuFile(path, stem, None)


def _kind(file: TofuFile, kind: str | None, notes: list[str]) -> str:
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"{file.path}: kind must be 'private' or 'shared', got {kind!r}")
        notes.append(f"kind {kind} (given)")
        return kind
    if file.kind is None:
        raise ValueError(f"{file.path}: not a TOFU file name (forgetNN, retainNN, full, holdoutNN, real_authors, "
                         "world_facts): give the kind of its records, private (fictitious authors) or shared "
                         "(real-world facts), with --kind")
    notes.append(f"kind {file.kind} (from the file name {file.name}; --kind to set)")
    return file.kind


def _first_author(file: TofuFile, first_author: int | None, n: int, notes: list[str]) -> int:
    """The author of the first record, for private records grouped by position, checked against the count."""
    named = file.first_author
    if first_author is None and named is None:
        raise ValueError(f"{file.path}: the file name does not tell which author its first record is about; give "
                         f"--first-author (forgetNN holds the last 2·NN of TOFU's {AUTHORS} authors, retainNN and "
                         "full start at author 0), or give each record a task_id")
    if first_author is not None and named is not None and first_author != named:
        raise ValueError(f"{file.path}: TOFU's {file.name} holds authors {named}-{named + file.authors - 1}; "
                         f"--first-author "
                         f"{first_author} contradicts the file name (drop it, or rename a file that is not TOFU's "
                         f"{file.name})")
    first = named if first_author is None else first_author
    if not 0 <= first < AUTHORS:
        raise ValueError(f"{file.path}: first_author must be in 0..{AUTHORS - 1}, got {first}")
    room = (file.authors if named is not None else AUTHORS - first) * PER_AUTHOR
    if n > room:
        raise ValueError(f"{file.path}: {n} records are more than the {room} that authors {first}-"
                         f"{first + room // PER_AUTHOR - 1} hold ({PER_AUTHOR} each)"
                         + (f"; TOFU's {file.name} has {room}" if named is not None else "; check --first-author"))
    last = first + (n - 1) // PER_AUTHOR
    source = "from the file name" if first_author is None else "given"
    partial = f"; the last has {n % PER_AUTHOR} of its {PER_AUTHOR}" if n % PER_AUTHOR else ""
    if named is not None and n < room:
        partial += f"; {n} of the {room} records TOFU's {file.name} has"
    notes.append(f"authors {first}-{last} by record position, {PER_AUTHOR} records each (first author {first} "
                 f"{source}){partial}: check that record 1 is about author {first}")
    return first


def _own_label(records: list[Record]) -> str | None:
    """The field that names each record's entity ("task_id", else "name"), when every record has it."""
    for field in ("task_id", "name"):
        has = [rec.data.get(field) is not None for rec in records]
        if any(has):
            if not all(has):
                raise records[has.index(False)].fail(f"no '{field}', which other records of this file have "
                                                     "(give every record one, or none)")
            return field
    return None


def _entities(records: list[Record], file: TofuFile, kind: str, first_author: int | None,
              notes: list[str]) -> list[tuple[str, str]]:
    """(entity, attribute) per record (see the module docstring)."""
    field = _own_label(records)
    prefix = "tofu_author" if kind == "private" else file.name if file.name in _SHARED_SETS else slug(file.name)
    if field is not None:
        keys = []
        for rec in records:
            key = rec.get(field, (int, str) if field == "task_id" else str)
            keys.append(f"{key:03d}" if isinstance(key, int) else slug(key))
        notes.append(f"entities from each record's '{field}' ({len(set(keys))} of them)")
    elif kind == "shared":
        return [(f"{prefix}_{rec.index:03d}", "fact") for rec in records]
    else:
        first = _first_author(file, first_author, len(records), notes)
        keys = [f"{first + rec.index // PER_AUTHOR:03d}" for rec in records]
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, -1) + 1
        out.append((f"{prefix}_{key}", f"q{seen[key]:02d}"))
    return out


def convert_tofu(records: list[Record], *, src: str | Path, kind: str | None = None,
                 first_author: int | None = None, track: Track = same) -> Imported:
    """TOFU question-answer records -> items (see the module docstring); `out.notes` say what was assumed."""
    file = tofu_file(src)
    out = Imported()
    kind = _kind(file, kind, out.notes)
    if first_author is not None and (kind == "shared" or _own_label(records) is not None):
        raise ValueError(f"{file.path}: first_author applies to private records grouped by position only "
                         + ("(these are shared)" if kind == "shared" else "(these carry their own labels)"))
    labels = _entities(records, file, kind, first_author, out.notes)
    for rec, (entity, attribute) in zip(track(records), labels):
        question, answer = rec.get("question").strip(), rec.get("answer").strip()
        paraphrases = [q.strip() for q in rec.strings("paraphrased_question") if q.strip() != question]
        out.add(rec, make_item(
            rec, id=f"{entity}.{attribute}.en.qa", entity=entity, attribute=attribute, kind=kind, language="en",
            question=question, answer=answer, paraphrases=paraphrases,
            answer_paraphrases=[a.strip() for a in rec.strings("paraphrased_answer")],
            perturbed=[a.strip() for a in rec.strings("perturbed_answer")]))
    with_para = sum(bool(it.answer_paraphrases) for it in out.items)
    out.notes.append(f"paraphrased answers (the truth ratio's base) on {with_para} of {len(out.items)} records")
    return out
