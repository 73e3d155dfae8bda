"""What every importer shares: reading a source file (a JSON array or JSON Lines) into numbered records, typed
field access whose errors name the file and record, id bookkeeping, and the `Imported` result.

A source error reads "{file}: record {n}: {problem}" for a JSON array (n counts records from 1) and
"{file}:{line}: {problem}" for JSON Lines (the file's line), the same shape as `schema.load_items`' errors.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from obliviate.data.schema import DataError, Item, _json_type, json_loads

T = TypeVar("T")
Track = Callable[[Iterable[T]], Iterable[T]]  # wraps the main record loop, e.g. in a progress bar


def same(records: Iterable[T]) -> Iterable[T]:
    """The default `track`: no progress display."""
    return records


@dataclass(frozen=True)
class Record:
    """One source record: `where` prefixes its error messages, `index` is its 0-based position among records."""

    where: str
    index: int
    data: dict

    def fail(self, problem: str) -> DataError:
        return DataError(f"{self.where}: {problem}")

    def get(self, name: str, want: type | tuple[type, ...] = str, *, required: bool = True) -> Any:
        """The field `name`, checked against `want`; None when absent (or null) and not `required`."""
        x = self.data.get(name)
        if x is None:
            if required:
                raise self.fail(f"missing '{name}'")
            return None
        if not isinstance(x, want) or isinstance(x, bool):
            names = " or ".join(_TYPE_NAMES[t] for t in (want if isinstance(want, tuple) else (want,)))
            raise self.fail(f"'{name}' must be {names}, got {_json_type(x)}")
        if isinstance(x, str) and not x.strip():
            raise self.fail(f"'{name}' is empty")
        return x

    def strings(self, name: str) -> list[str]:
        """An optional field holding a string or a list of strings, as a list ([] when absent)."""
        x = self.get(name, (str, list), required=False)
        if x is None:
            return []
        if isinstance(x, str):
            return [x]
        bad = [e for e in x if not isinstance(e, str)]
        if bad:
            raise self.fail(f"'{name}' must hold strings, got {_json_type(bad[0])}")
        return [e for e in x if e.strip()]


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


def read_records(path: str | Path) -> list[Record]:
    """Parse a source file holding a JSON array of objects or JSON Lines (one object a line; blank lines
    skipped), whatever its extension: the first non-space character decides."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise DataError(f"{name}: not valid UTF-8") from None
    if not text.strip():
        raise DataError(f"{name}: empty file")
    if text.lstrip().startswith("["):
        try:
            rows = json_loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
        except DataError as e:
            raise DataError(f"{name}: {e}") from None
        located = [(f"{name}: record {n}", row) for n, row in enumerate(rows, 1)]
    else:
        located = []
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                located.append((f"{name}:{n}", json_loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{name}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
            except DataError as e:
                raise DataError(f"{name}:{n}: {e}") from None
    records = []
    for where, row in located:
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {_json_type(row)}")
        records.append(Record(where, len(records), row))
    if not records:
        raise DataError(f"{name}: no records")
    return records


def slug(text: str) -> str:
    """An id-safe form of a name: accents dropped, lower case, runs of other characters -> '-'
    ("Jean-Philippe Mateta" -> "jean-philippe-mateta"); names with no Latin letters keep their characters."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    return s or re.sub(r"[\s.]+", "-", text.strip())


def make_item(rec: Record, **fields_) -> Item:
    """Build an Item, reporting a failed check against the source record."""
    try:
        return Item(**fields_)
    except DataError as e:
        raise rec.fail(str(e)) from None


@dataclass
class Imported:
    """A converted source: the items in source order, the files to copy beside the output (image path as
    written in the items, relative to the output's folder -> the source file), and notes on what the converter
    assumed or derived (printed by `obliviate import`)."""

    items: list[Item] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _origin: dict[str, str] = field(default_factory=dict, repr=False)  # item id -> the record it came from

    def add(self, rec: Record, item: Item) -> None:
        if item.id in self._origin:
            raise rec.fail(f"duplicate id {item.id!r} (first made from {self._origin[item.id]})")
        self._origin[item.id] = rec.where
        self.items.append(item)
