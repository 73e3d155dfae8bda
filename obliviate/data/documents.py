"""Plain documents: text with no question and answer (a news article, a page), one JSON object per JSONL line:

    id        str   unique within the file
    language  str   ISO 639-1 code
    text      str   the document

`learn --documents FILE` trains on them as a language model does (every token predicts the next; documents are
packed into fixed-length blocks: `models.encode.encode_documents`). Learn and Unlearn (Lu & Koehn, 2406.13748)
inject misinformation this way, as fake news articles, then ask questions about it. The loader is as strict as
`schema.load_items`: the first problem stops it with one DataError "{path}:{line}: {problem}".
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from obliviate.data.schema import KNOWN_LANGUAGES, DataError, _json_type, _parse
from obliviate.files import atomic_file

FIELDS = ("id", "language", "text")


@dataclass(frozen=True)
class Document:
    id: str
    language: str
    text: str

    @classmethod
    def from_json(cls, line: str) -> "Document":
        obj = _parse(line)
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {_json_type(obj)}")
        unknown = sorted(set(obj) - set(FIELDS))
        missing = [k for k in FIELDS if k not in obj]
        if unknown or missing:
            raise DataError(f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}")
        for k in FIELDS:
            if not isinstance(obj[k], str):
                raise DataError(f"field '{k}' must be a string, got {_json_type(obj[k])}")
        if not obj["text"].strip():
            raise DataError("empty text")
        if obj["language"] not in KNOWN_LANGUAGES:
            raise DataError(f"unknown language code {obj['language']!r}")
        return cls(**obj)


def load_documents(path: str | Path) -> list[Document]:
    """Read and check a documents JSONL file (blank lines skipped; ids unique)."""
    try:
        lines = Path(path).read_bytes().split(b"\n")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    docs, first = [], {}
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            doc = Document.from_json(line)
            if doc.id in first:
                raise DataError(f"duplicate id {doc.id!r} (first on line {first[doc.id]})")
        except UnicodeDecodeError:
            raise DataError(f"{path}:{n}: not valid UTF-8") from None
        except DataError as e:
            raise DataError(f"{path}:{n}: {e}") from None
        first[doc.id] = n
        docs.append(doc)
    if not docs:
        raise DataError(f"{path}: empty file")
    return docs


def write_documents(path: str | Path, docs: Iterable[Document]) -> int:
    """Write documents as JSONL atomically; returns how many."""
    docs = list(docs)
    if not docs:
        raise DataError(f"{path}: no documents to write")
    with atomic_file(path) as f:
        for d in docs:
            f.write((json.dumps(asdict(d), ensure_ascii=False) + "\n").encode("utf-8"))
    return len(docs)
