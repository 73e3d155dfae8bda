"""A grid expanded into cells, in an order where every cell comes after the cells it builds on.

The combinations are the product of the axes minus `exclude`. A stage *uses* the axes named in its options, in its
`when` and `only` tables, in the data sets it reads, and those of the stage it continues; it runs once per distinct
combination of those axes (so a pretraining stage that names no axis runs once and every unlearning run builds on
it). Its run folder is OUT/runs/STAGE/axis-label_axis-label (OUT/runs/STAGE without axes).

Each cell's digest hashes its job (every resolved option and path), the digests of the cells it builds on, and the
identity of the files it reads from outside the sweep folder (data files by content; model folders by file names,
sizes and JSON content): a finished cell whose digest no longer matches is reported, never silently reused.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, replace
from pathlib import Path

from obliviate.sweep.cells import Cell, DataRef, EvalJob, ModelJob, TrainJob, WorldJob
from obliviate.sweep.check import check_options, check_select, option_fields, placeholders, stage_order
from obliviate.sweep.grid import DATA_KEYS, PLACEHOLDER, WORLD, Grid, StageSpec, Where

LIST_FILTERS = ("languages", "attributes", "kinds", "roles", "ids", "exclude_ids")


def combinations(grid: Grid) -> list[dict[str, str]]:
    """Every combination of axis labels, in axis order, minus those matching an `exclude` entry."""
    names = list(grid.axes)
    combos = [dict(zip(names, labels)) for labels in itertools.product(*(grid.axes[n].labels for n in names))]
    return [c for c in combos if not any(all(c[a] == lab for a, lab in ex.items()) for ex in grid.exclude)]


def substitute(value, coords: dict[str, str], grid: Grid):
    """Placeholders replaced: "{axis}" alone by the axis value, inside a longer string by its label."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in grid.axes:
            return grid.axes[whole.group(1)].value(coords[whole.group(1)])
        return PLACEHOLDER.sub(lambda m: coords[m.group(1)] if m.group(1) in grid.axes else m.group(0), value)
    if isinstance(value, list):
        return [substitute(v, coords, grid) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, coords, grid) for k, v in value.items()}
    return value


def label(coords: dict[str, str]) -> str:
    """axis-label_axis-label: the folder name of a combination."""
    return "_".join(f"{a}-{v}" for a, v in coords.items())


def plan_cells(grid: Grid) -> list[Cell]:
    """The grid's cells: the world, tiny models, every stage's runs, the evaluations; each after its inputs."""
    return _Planner(grid).cells()


class _Planner:
    def __init__(self, grid: Grid):
        self.grid, self.where = grid, Where(grid.path)
        self.combos = combinations(grid)
        self.by_stage: dict[str, list[Cell]] = {}
        self.digests: dict[str, str] = {}
        self.identities: dict[str, str] = {}

    def cells(self) -> list[Cell]:
        g = self.grid
        out = []
        if g.world is not None:
            out.append(self._finish(Cell("world", WORLD, "world", {}, "world", (), WorldJob(dict(g.world)))))
        for m in g.models.values():
            if m.tiny is not None:
                texts = tuple(self.path(t) for t in m.texts)
                job = ModelJob(m.tiny, m.vision, m.seed, m.vocab_size, texts)
                out.append(self._finish(Cell(f"model/{m.name}", m.name, "model", {}, f"models/{m.name}",
                                             self.producers(texts), job)))
        for name in stage_order(g):
            self.by_stage[name] = [self._finish(c) for c in self._stage_cells(g.stages[name])]
            out += self.by_stage[name]
        for spec in g.evals.values():
            out += [self._finish(c) for c in self._eval_cells(spec)]
        return out

    # -- paths and data ------------------------------------------------------------------------------------------

    def path(self, path: str) -> str:
        """{world}/FILE -> world/FILE (under OUT); anything else relative to the grid file's folder, absolute."""
        if path.startswith("{world}/"):
            return "world/" + path[len("{world}/"):]
        return str((self.grid.folder / path).resolve())

    def model_path(self, name: str) -> str:
        m = self.grid.models[name]
        return self.path(m.path) if m.path is not None else f"models/{name}"

    def producers(self, paths) -> tuple[str, ...]:
        """The cells that write these OUT-relative paths (the world, a tiny model)."""
        ids = []
        for p in paths:
            if p.startswith("world/"):
                ids.append("world")
            elif p.startswith("models/"):
                ids.append(f"model/{p.split('/')[1]}")
        return tuple(dict.fromkeys(ids))

    def data_ref(self, name: str, coords: dict[str, str]) -> DataRef:
        spec = self.grid.data[name]
        used = {a: coords[a] for a in self.grid.axes if a in placeholders([spec.file, spec.select])}
        select = substitute(spec.select, coords, self.grid)
        select = {k: [v] if k in LIST_FILTERS and isinstance(v, str) else v for k, v in select.items()}
        check_select(self.where, f"[data.{name}]", select)
        source = self.path(substitute(spec.file, coords, self.grid))
        if not select:
            return DataRef(name, source, {}, source)
        folder = f"data/{name}" + (f".{label(used)}" if used else "")
        return DataRef(name, source, select, f"{folder}/{name}.jsonl")

    # -- stages ----------------------------------------------------------------------------------------------------

    def stage_axes(self, stage: StageSpec) -> list[str]:
        """The axes a stage uses (see the module docstring), in axis order."""
        g = self.grid
        options = self.options_of(stage)
        names = set(stage.when) | set(stage.only) | placeholders([options, stage.lora, stage.when])
        for table in [options, *[t for by in stage.when.values() for t in by.values()]]:
            for key in DATA_KEYS[stage.job]:
                if table.get(key) is not None:
                    names |= placeholders([g.data[table[key]].file, g.data[table[key]].select])
        if stage.after is not None:
            names |= set(self.stage_axes(g.stages[stage.after]))
        return [a for a in g.axes if a in names]

    def options_of(self, stage: StageSpec, coords: dict[str, str] | None = None) -> dict:
        """[defaults] that apply to the job, the stage's options, then `when` overrides (in axis order)."""
        from obliviate.sweep.check import job_keys

        allowed = job_keys(stage.job)
        merged = {k: v for k, v in self.grid.defaults.items() if k in allowed}
        merged.update(stage.options)
        for axis in self.grid.axes:
            override = stage.when.get(axis, {}).get((coords or {}).get(axis))
            merged.update({k: v for k, v in (override or {}).items() if k != "lora"})
        return merged

    def lora_of(self, stage: StageSpec, coords: dict[str, str]) -> dict:
        lora = {**self.grid.defaults.get("lora", {}), **stage.lora}
        for axis in self.grid.axes:
            lora.update(stage.when.get(axis, {}).get(coords.get(axis), {}).get("lora", {}))
        return lora

    def _stage_cells(self, stage: StageSpec) -> list[Cell]:
        axes = self.stage_axes(stage)
        upstream = {c.id: c for c in self.by_stage.get(stage.after, [])}
        cells: dict[str, Cell] = {}
        for combo in self.combos:
            coords = {a: combo[a] for a in axes}
            if any(coords[a] not in allowed for a, allowed in stage.only.items()):
                continue
            cell_id = stage.name + (f"/{label(coords)}" if coords else "")
            if cell_id in cells:
                continue
            up = None
            if stage.after is not None:
                up_axes = self.stage_axes(self.grid.stages[stage.after])
                up = upstream.get(stage.after + (f"/{label({a: coords[a] for a in up_axes})}" if up_axes else ""))
                if up is None:  # the stage it continues does not run at these coordinates
                    continue
            cells[cell_id] = self._train_cell(stage, cell_id, coords, up)
        return list(cells.values())

    def _train_cell(self, stage: StageSpec, cell_id: str, coords: dict[str, str], up: Cell | None) -> Cell:
        entry = f"[stages.{stage.name}] at {label(coords) or 'its only run'}"
        options = substitute(self.options_of(stage, coords), coords, self.grid)
        lora = substitute(self.lora_of(stage, coords), coords, self.grid)
        check_options(self.where, entry, stage.job, options, lora)
        if up is None:
            base, adapter = self.model_path(stage.model), None
        elif up.job.full:
            base, adapter = up.output, None
        else:
            base, adapter = up.job.base, up.run_dir
        refs = {key: self.data_ref(options[key], coords) for key in DATA_KEYS[stage.job] if options.get(key)}
        records = option_fields()
        reference = options.get("reference")
        job = TrainJob(job=stage.job, base=base, adapter=adapter, **refs, method=options.get("method"),
                       full=options.get("full", False), block_size=options.get("block_size"), text_only=options.get("text_only", False),
                       retain_ratio=options.get("retain_ratio"),
                       reference=self.model_path(reference) if reference else None,
                       train={k: v for k, v in options.items() if k in records["train"]},
                       method_options={k: v for k, v in options.items() if k in records["method"]}, lora=lora)
        depends = ((up.id,) if up else ()) + self.producers([base, *(r.source for r in refs.values())])
        run_dir = f"runs/{stage.name}" + (f"/{label(coords)}" if coords else "")
        return Cell(cell_id, stage.name, stage.job, coords, run_dir, tuple(dict.fromkeys(depends)), job)

    # -- evaluations -------------------------------------------------------------------------------------------

    def _eval_cells(self, spec) -> list[Cell]:
        g = self.grid
        if spec.base in g.models:
            bases = [(spec.base, self.model_path(spec.base), {}, self.producers([self.model_path(spec.base)]))]
        else:
            runs = self.by_stage[spec.base]
            if not all(c.job.full for c in runs):
                raise self.where.error(f"[eval.{spec.name}]", f"base {spec.base!r} must be a stage that trains a "
                                                              "full model (full = true) or a [models] name")
            bases = [(c.id, c.output, c.coords, (c.id,)) for c in runs]
        stages = spec.adapters if spec.adapters is not None else list(g.stages)
        probes = {split: self.data_ref(name, {}) for split, name in spec.probes.items()}
        cells = []
        for base_id, base_path, coords, base_deps in bases:
            adapters = [c for s in stages for c in self.by_stage[s] if not c.job.full and c.job.base == base_path]
            job = EvalJob(base=base_path, base_name=spec.base_name or base_id, base_stage=spec.base,
                          adapters={c.id: c.run_dir for c in adapters}, probes=probes, score=spec.score,
                          limit=spec.limit, options=dict(spec.options))
            cell_id = f"eval/{spec.name}" + (f"/{label(coords)}" if coords else "")
            depends = base_deps + tuple(c.id for c in adapters) + self.producers([p.source for p in probes.values()])
            cells.append(Cell(cell_id, spec.name, "eval", coords, cell_id, tuple(dict.fromkeys(depends)), job))
        return cells

    # -- digests -----------------------------------------------------------------------------------------------

    def _finish(self, cell: Cell) -> Cell:
        """The cell with its digest: its job, its inputs' digests and the identity of the outside files it reads."""
        outside = sorted({p for p in _paths(asdict(cell.job)) if Path(p).is_absolute()})
        payload = {"kind": cell.kind, "job": asdict(cell.job), "depends": {d: self.digests[d] for d in cell.depends},
                   "outside": {p: self.identity(p) for p in outside}}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]
        self.digests[cell.id] = digest
        return replace(cell, digest=digest)

    def identity(self, path: str) -> str:
        """A file's content hash; a folder's file names, sizes and JSON files' content; "missing" when absent."""
        if path not in self.identities:
            p, h = Path(path), hashlib.sha256()
            if p.is_file():
                h.update(p.read_bytes())
            elif p.is_dir():
                for f in sorted(q for q in p.rglob("*") if q.is_file()):
                    h.update(f"{f.relative_to(p)}:{f.stat().st_size}".encode())
                    if f.suffix == ".json":
                        h.update(f.read_bytes())
            self.identities[path] = h.hexdigest()[:20] if p.exists() else "missing"
        return self.identities[path]


def _paths(job: dict) -> list[str]:
    """The paths a job dict reads: base, adapter, reference, data sources, texts."""
    out = [job.get(k) for k in ("base", "reference")] + list(job.get("texts", []))
    out += [ref["source"] for k in ("data", "documents", "forget", "retain") if job.get(k) for ref in [job[k]]]
    out += [ref["source"] for ref in job.get("probes", {}).values()]
    return [p for p in out if isinstance(p, str)]
