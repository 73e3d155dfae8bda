"""Data subsets: the items of a JSONL file that pass a data set's filters, written where a job can read them.

A subset is written to OUT/data/NAME[.LABEL]/NAME.jsonl with the pictures it refers to hard-linked (copied where
links are not possible) into the same folder, so its image paths stay relative to the file, as the schema wants.
Two workers writing the same subset write the same bytes atomically; either file is whole.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
from pathlib import Path

from obliviate.data.schema import Item, load_items, write_items
from obliviate.files import atomic_file
from obliviate.sweep.cells import DataRef, resolve


def world_roles(source: Path) -> dict[str, str]:
    """entity -> role, from the world.json beside a world file."""
    path = source.parent / "world.json"
    if not path.is_file():
        raise ValueError(f"{source}: the roles filter needs world.json beside the file (a world from "
                         "`obliviate world build` or the grid's [world])")
    return {p["id"]: p["role"] for p in json.loads(path.read_text(encoding="utf-8"))["players"]}


def select_items(items: list[Item], select: dict, *, roles: dict[str, str] | None = None) -> list[Item]:
    """The items passing every filter of `select` (grid.py lists them), in file order."""
    tests = {
        "languages": lambda it, v: it.language in v,
        "attributes": lambda it, v: it.attribute in v,
        "kinds": lambda it, v: it.kind in v,
        "modality": lambda it, v: ("image" if it.image else "text") == v,
        "misinformation": lambda it, v: (it.truth is not None) == v,
        "roles": lambda it, v: (roles or {}).get(it.entity) in v,
        "ids": lambda it, v: any(fnmatch.fnmatchcase(it.id, p) for p in v),
        "exclude_ids": lambda it, v: not any(fnmatch.fnmatchcase(it.id, p) for p in v),
    }
    kept = [it for it in items if all(tests[k](it, v) for k, v in select.items() if k in tests)]
    if "max_entities" in select:
        first = set(sorted({it.entity for it in kept})[: select["max_entities"]])
        kept = [it for it in kept if it.entity in first]
    return kept


def materialize(out: Path, ref: DataRef) -> Path:
    """The file a job reads for `ref`: its source, or the subset written under OUT/data/ (see the module)."""
    source = resolve(out, ref.source)
    if ref.path == ref.source:
        return source
    roles = world_roles(source) if "roles" in ref.select else None
    kept = select_items(load_items(source), ref.select, roles=roles)
    if not kept:
        raise ValueError(f"data set {ref.name!r}: no item of {source} passes the filters {ref.select}")
    dest = out / ref.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    for image in sorted({it.image for it in kept if it.image}):
        _link(source.parent / image, dest.parent / image)
    write_items(dest, kept)
    return dest


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:  # another worker linked it first
        pass
    except OSError:  # another file system, or links not allowed: copy
        with open(src, "rb") as f, atomic_file(dst) as g:
            shutil.copyfileobj(f, g)
