"""What a grid may say: the options of each job, their types, the references between entries, and the placeholders.

`check_grid` runs when a grid is loaded (names, keys, placeholders, stage order); `check_options` and
`check_select` run on every cell's resolved values when the grid is planned, so `--dry-run` already reports a bad
value with the file and the entry."""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from obliviate.sweep.grid import DATA_KEYS, PLACEHOLDER, WORLD, EvalSpec, Grid, GridError, StageSpec, Where


def option_fields() -> dict[str, dict[str, Any]]:
    """Defaults of the option records a stage sets: "train" (TrainOptions), "method" (MethodOptions), "lora"."""
    from obliviate.models.options import LoraOptions
    from obliviate.train.options import TrainOptions
    from obliviate.train.options import MethodOptions

    return {name: {f.name: f.default for f in fields(cls)}
            for name, cls in (("train", TrainOptions), ("method", MethodOptions), ("lora", LoraOptions))}


def job_keys(job: str) -> tuple[str, ...]:
    """The keys a stage of `job` may set (besides lora, when and only)."""
    extra = {"learn": ("full", "block_size"), "relearn": (), "unlearn": ("method", "retain_ratio", "reference")}[job]
    method = tuple(option_fields()["method"]) if job == "unlearn" else ()
    return DATA_KEYS[job] + extra + ("text_only",) + tuple(option_fields()["train"]) + method


def placeholders(value) -> set[str]:
    """The names inside {...} anywhere in `value` (strings, lists, tables)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, (list, tuple)):
        return set().union(*map(placeholders, value)) if value else set()
    if isinstance(value, dict):
        return placeholders(list(value.values()))
    return set()


def check_grid(grid: Grid, where: Where) -> None:
    """Every name a grid refers to exists, every key is known, every placeholder names an axis, stages form a
    chain without loops."""
    all_keys = set().union(*(job_keys(j) for j in DATA_KEYS)) | {"lora"}
    where.keys("[defaults]", grid.defaults, sorted(all_keys))
    _check_lora(where, "[defaults] lora", grid.defaults.get("lora", {}))
    for stage in grid.stages.values():
        _check_stage(grid, where, stage)
    stage_order(grid)  # loops
    for spec in grid.data.values():
        _check_placeholders(grid, where, f"[data.{spec.name}]", [spec.file, spec.select], paths=[spec.file])
    for model in grid.models.values():
        _check_placeholders(grid, where, f"[models.{model.name}]", list(model.texts) + [model.path or ""],
                            paths=list(model.texts) + [model.path or ""], axes=False)
    for spec in grid.evals.values():
        entry = f"[eval.{spec.name}]"
        _check_eval_options(where, entry, spec)
        if spec.base not in grid.stages and spec.base not in grid.models:
            raise where.error(entry, f"base {spec.base!r} is neither a stage nor a [models] name")
        for name in spec.adapters or ():
            if name not in grid.stages:
                raise where.error(entry, f"adapters: {name!r} is not a stage")
        for split, name in spec.probes.items():
            if name not in grid.data:
                raise where.error(entry, f"probes.{split}: {name!r} is not a [data] name")
            if placeholders([grid.data[name].file, grid.data[name].select]) - {WORLD}:
                raise where.error(entry, f"probes.{split}: data set {name!r} depends on an axis; probes are shared "
                                         "by every run of an evaluation")


def _check_eval_options(where: Where, entry: str, spec: EvalSpec) -> None:
    from obliviate.eval.options import BACKENDS, EvalOptions

    defaults = {f.name: f.default for f in fields(EvalOptions)}
    values = {**spec.options, "score": spec.score, "limit": spec.limit, "base_name": spec.base_name,
              "adapters": list(spec.adapters or [])}
    # max_new_tokens is None by default (a limit per probe) but an integer when given
    expected = {**defaults, "max_new_tokens": 1, "score": True, "limit": 1, "base_name": "", "adapters": ()}
    for key, value in values.items():
        # other options without a fixed type (None by default: device, fake_language, reference, ...) take strings
        problem = None if value is None else _type_error(value, "" if expected[key] is None else expected[key])
        if problem or (key == "limit" and value is not None and value < 1):
            raise where.error(entry, f"{key} = {value!r}: {problem or 'expected a positive integer'}")
    if spec.options.get("backend", "auto") not in BACKENDS:
        raise where.error(entry, f"backend must be one of {', '.join(BACKENDS)}")


def _check_stage(grid: Grid, where: Where, stage: StageSpec) -> None:
    entry = f"[stages.{stage.name}]"
    allowed = job_keys(stage.job)
    where.keys(entry, stage.options, allowed)
    _check_lora(where, f"{entry} lora", stage.lora)
    if stage.model is not None and stage.model not in grid.models:
        raise where.error(entry, f"model {stage.model!r} is not a [models] name")
    if stage.after is not None and stage.after not in grid.stages:
        raise where.error(entry, f"after {stage.after!r} is not a stage")
    for axis, by_label in stage.when.items():
        for label, table in by_label.items():
            where.keys(f"{entry} when.{axis}.{label}", table, allowed + ("lora",))
            _check_lora(where, f"{entry} when.{axis}.{label} lora", table.get("lora", {}))
    tables = [stage.options, *[t for by in stage.when.values() for t in by.values()]]
    for table in tables:
        for key in DATA_KEYS[stage.job]:
            name = table.get(key)
            if name is not None and name not in grid.data:
                raise where.error(entry, f"{key}: {name!r} is not a [data] name (data sets are named literally; "
                                         "use `when` to pick one per axis value)")
            if key == "documents" and name is not None and grid.data[name].select:
                raise where.error(entry, f"documents: data set {name!r} has filters; documents are plain text, "
                                         "read whole")
        if isinstance(table.get("reference"), str) and table["reference"] not in grid.models:
            raise where.error(entry, f"reference: {table['reference']!r} is not a [models] name")
    _check_placeholders(grid, where, entry, [stage.options, stage.lora, stage.when])


def _check_lora(where: Where, entry: str, lora) -> None:
    where.keys(entry, where.table(entry, lora), tuple(option_fields()["lora"]))


def _check_placeholders(grid: Grid, where: Where, entry: str, value, *, paths=(), axes: bool = True) -> None:
    for name in placeholders(value):
        if name == WORLD:
            if grid.world is None:
                raise where.error(entry, "{world} needs a [world] table (the world the sweep builds)")
            if not any(isinstance(p, str) and p.startswith("{world}/") for p in paths):
                raise where.error(entry, "{world} may only begin a path: {world}/FILE")
        elif name not in grid.axes or not axes:
            raise where.error(entry, f"{{{name}}} is not an axis" + ("" if axes else " (axes are not allowed here)"))


def stage_order(grid: Grid) -> list[str]:
    """Stage names, every stage after the one it continues; GridError on a loop."""
    order: list[str] = []
    for name in grid.stages:
        chain = []
        while name is not None and name not in order:
            if name in chain:
                raise GridError(f"{grid.path}: [stages.{name}]: the stages' `after` entries form a loop "
                                f"({' -> '.join(chain + [name])})")
            chain.append(name)
            name = grid.stages[name].after
        order += reversed(chain)
    return order


def _type_error(value, default) -> str | None:
    """Why `value` cannot stand where an option defaults to `default`, or None."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int) and not isinstance(default, bool):
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if isinstance(default, float) or default is None:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "expected a string"
    if isinstance(default, tuple):
        return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else \
            "expected a list of strings"
    return None


def check_options(where: Where, entry: str, job: str, options: dict, lora: dict) -> None:
    """A cell's resolved options have the types of the records they fill; the job's data and method are set."""
    from obliviate.train.options import METHODS

    records = option_fields()
    defaults = {**records["train"], **records["method"], "full": False, "text_only": False, "retain_ratio": None,
                "block_size": 256}
    if "method" in options and options["method"] not in METHODS:
        raise where.error(entry, f"method {options['method']!r} is not one of {', '.join(METHODS)}")
    for key, value in [*options.items(), *((f"lora.{k}", v) for k, v in lora.items())]:
        default = records["lora"][key[5:]] if key.startswith("lora.") else defaults.get(key, "")
        problem = _type_error(value, default)
        if problem:
            raise where.error(entry, f"{key} = {value!r}: {problem}")
    if job == "learn" and options.get("data") is None and options.get("documents") is not None:
        return  # documents alone
    for key in ("forget", "method") if job == "unlearn" else ("data",):
        if options.get(key) is None:
            raise where.error(entry, f"a {job} stage needs {key} (in the stage, [defaults] or every `when`)")


def check_select(where: Where, entry: str, select: dict) -> None:
    """Resolved data filters: lists of strings, a modality, a flag, a count."""
    for key, value in select.items():
        if key in ("languages", "attributes", "kinds", "roles", "ids", "exclude_ids"):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            problem = "expected a list of strings"
        elif key == "modality":
            ok, problem = value in ("text", "image"), "expected \"text\" or \"image\""
        elif key == "misinformation":
            ok, problem = isinstance(value, bool), "expected true or false"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            problem = "expected a positive integer"
        if not ok:
            raise where.error(entry, f"{key} = {value!r}: {problem}")
