"""An evaluation's result in memory (`EvalResult`) and on disk (results.json: {"meta", "tables", "rows"})."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from obliviate.eval.rows import EvalMeta, ProbeRow
from obliviate.eval.views import Table
from obliviate.files import write_text

RESULTS = "results.json"


@dataclass
class EvalResult:
    """Rows (one per probe × model), run metadata, the aggregate tables, and where results.json was written."""

    rows: list[ProbeRow]
    meta: EvalMeta
    tables: list[Table] = field(default_factory=list)
    path: Path | None = None

    def to_dict(self) -> dict:
        return {"meta": self.meta.to_dict(), "tables": [t.to_dict() for t in self.tables],
                "rows": [r.to_dict() for r in self.rows]}

    def renamed(self, names: dict[str, str]) -> EvalResult:
        """The same rows and metadata with models renamed (`names`: old -> new; others keep theirs). The
        aggregate tables are left out: they are views of the rows, which `views` and the report rebuild."""
        new = lambda name: names.get(name, name)  # noqa: E731
        meta = replace(self.meta, models={new(n): info for n, info in self.meta.models.items()},
                       relearn_pairs={new(a): new(b) for a, b in self.meta.relearn_pairs.items()},
                       reference=None if self.meta.reference is None else new(self.meta.reference))
        return EvalResult([replace(r, model=new(r.model)) for r in self.rows], meta, [], self.path)

    def table(self, title: str) -> Table:
        """The first table whose title starts with `title`."""
        for t in self.tables:
            if t.title.startswith(title):
                return t
        raise KeyError(f"no table titled {title!r}; have: {[t.title for t in self.tables]}")


def load_results(path: str | Path) -> EvalResult:
    """Read results.json (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation results (run `obliviate eval --out` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EvalResult(rows=[ProbeRow.from_dict(r) for r in data["rows"]], meta=EvalMeta.from_dict(data["meta"]),
                          tables=[Table.from_dict(t) for t in data.get("tables", [])], path=path)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an obliviate results file ({err})") from err


def write_results(result: EvalResult, out: str | Path) -> Path:
    """Write results.json into folder `out`, atomically (a reader never sees half a file)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.path = write_text(out / RESULTS, json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    return result.path
