"""The grid file: one TOML file naming the models, the data, the stages and the axes of an experiment, read into
typed, checked records (`Grid`). `plan.plan_cells` expands it into cells.

Why TOML: Python 3.11 reads it with the standard library (`tomllib`: no new dependency), it keeps types (`2e-3` is a
float, `fr` is a string — YAML 1.1 reads `1e-3` as a string and `no`, `on`, `yes` as booleans, a trap for
language codes), it has comments, and its tables map one to one onto the records below.

    name = "misinformation"                   # optional: shown in progress lines
    [vars]                                    # optional: named values, written {name} anywhere below and replaced
    fake_language = "fr"                      # when the file is read; `--set fake_language=de` (`load_grid(...,
                                              # vars=...)`) gives another value without editing the file
    exclude = [{ setting = "selective", method = "npo" }]   # combinations never run (a partial match suffices)

    [world]                                   # optional: build the embedded world (WorldSpec fields) into OUT/world
    players = 12                              # paths may start with {world}/

    [models.text]                             # a starting model: a local Hugging Face folder ...
    path = "/models/Qwen2.5-7B-Instruct"      # (relative paths: to this file's folder)
    [models.tiny]                             # ... or a tiny model built into OUT/models/NAME: preset, vision, seed,
    tiny = "test"                             # vocab_size, and the files its tokenizer is trained on
    texts = ["{world}/learn.jsonl", "{world}/probes.jsonl"]

    [data]                                    # named data sets: a JSONL file and filters over its items
    forget = { file = "{world}/forget.jsonl", modality = "text", misinformation = true, languages = "{langs}" }

    [axes]                                    # what to cross: a list of values, or a table label -> value
    method = ["ga", "npo", "idkpo"]
    langs = { en = ["en"], L = ["fr"], "en+L" = ["en", "fr"] }
    seed = [0, 1, 2]

    [defaults]                                # options of every stage (a stage's own options win)
    save_every = 2

    [stages.unlearn]                          # one run per combination of the axes the stage (and its data, and the
    job = "unlearn"                           # stages before it) uses; learn | unlearn | relearn
    model = "text"                            # start from a [models] entry, or `after = "STAGE"`: continue that
    forget = "forget"                         # stage's output (its adapter is stacked beneath, or its full model
    method = "{method}"                       # becomes the base)
    seed = "{seed}"                           # "{axis}" alone: the value; inside a string: the label
    when.method.ga = { lr = 2e-3 }            # options for one value of an axis
    only = { langs = ["en", "L"] }            # run only for these values

    [eval.text]                               # one evaluation per base: every adapter of `adapters` on it, one pass
    base = "pretrain"                         # a stage (its full model) or a [models] name
    adapters = ["inject", "unlearn"]          # stages (default: every stage whose runs sit on this base)
    probes = { misinfo = "probe_misinfo", retain = "probe_retain" }
    backend = "hf"                            # and EvalOptions fields, score, limit, base_name

Stage options: job, model | after, data (learn, relearn), forget / retain / method / retain_ratio / reference
(unlearn), full, documents (a data set of plain-text documents, without filters) and block_size (learn), text_only, the fields of TrainOptions (steps, lr, batch_size, seed, save_every, ...) and
MethodOptions (beta, alpha, delta, retain_loss, span), and `lora = { r = 16, alpha = 32 }` (LoraOptions). Data set
filters (all optional, all kept in file order): languages, attributes, kinds (shared / private), modality (text /
image), misinformation (items with / without a `truth`), roles (world.json roles of the entity: fake, forget,
retain), max_entities (the first N entities, sorted, of what the other filters keep), ids / exclude_ids (glob
patterns).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (setup.py asks for it there only)
    import tomli as tomllib

JOBS = ("learn", "unlearn", "relearn")
DATA_KEYS = {"learn": ("data", "documents"), "relearn": ("data",), "unlearn": ("forget", "retain")}
SELECT_KEYS = ("languages", "attributes", "kinds", "modality", "misinformation", "roles", "max_entities", "ids",
               "exclude_ids")
EVAL_KEYS = ("base", "base_name", "adapters", "probes", "score", "limit")
TINY_KEYS = ("tiny", "vision", "seed", "vocab_size", "texts")
TOP_KEYS = ("name", "vars", "exclude", "world", "models", "data", "axes", "defaults", "stages", "eval")
LABEL = re.compile(r"^[A-Za-z0-9._+@-]+$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
WORLD = "world"  # the placeholder {world}: OUT/world, the built world


class GridError(ValueError):
    """A grid file that cannot be run; the message names the file and the entry."""


@dataclass(frozen=True)
class Axis:
    """One axis to cross: its name, and its values with their labels (what run folders and tables show)."""

    name: str
    labels: tuple[str, ...]
    values: tuple[Any, ...]

    def value(self, label: str) -> Any:
        return self.values[self.labels.index(label)]


@dataclass(frozen=True)
class ModelSpec:
    """A starting model: a local folder (`path`), or a tiny model built from `texts` (`tiny` = its preset)."""

    name: str
    path: str | None = None
    tiny: str | None = None
    vision: bool = False
    seed: int = 0
    vocab_size: int = 2048
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataSpec:
    """A named data set: a JSONL file and filters (values may hold placeholders until a cell resolves them)."""

    name: str
    file: str
    select: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSpec:
    """A training stage: its job, where it starts (`model`) or what it continues (`after`), its options (raw, may
    hold placeholders), LoRA options, per-axis-value overrides (`when`) and value restrictions (`only`)."""

    name: str
    job: str
    model: str | None
    after: str | None
    options: dict[str, Any]
    lora: dict[str, Any]
    when: dict[str, dict[str, dict[str, Any]]]
    only: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation per run of `base`: the adapters of the `adapters` stages on it, over the `probes` data sets."""

    name: str
    base: str
    adapters: tuple[str, ...] | None
    probes: dict[str, str]
    base_name: str | None = None
    score: bool = True
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # EvalOptions fields


@dataclass(frozen=True)
class Grid:
    """A whole grid file, checked: every name it refers to exists, every placeholder names an axis."""

    path: Path
    name: str
    world: dict[str, Any] | None
    models: dict[str, ModelSpec]
    data: dict[str, DataSpec]
    axes: dict[str, Axis]
    exclude: tuple[dict[str, str], ...]
    defaults: dict[str, Any]
    stages: dict[str, StageSpec]
    evals: dict[str, EvalSpec]
    vars: dict[str, Any] = field(default_factory=dict)  # [vars] with the values given to load_grid

    @property
    def folder(self) -> Path:
        return self.path.parent


def load_grid(path: str | Path, *, vars: dict[str, Any] | None = None) -> Grid:
    """Read and check a grid file; `GridError` names the file and the entry at fault. vars: values for some of
    the file's [vars] (each must be declared there)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridError(f"{path}: no such grid file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GridError(f"{path}: {err}") from None
    where = Where(path)
    where.keys("top level", raw, TOP_KEYS)
    raw, values = _with_vars(where, raw, dict(vars or {}))
    axes = {name: _axis(where, name, values) for name, values in where.table("axes", raw.get("axes", {})).items()}
    grid = Grid(path=path.resolve(), name=str(raw.get("name", path.stem)), world=_world(where, raw.get("world")),
                models=_models(where, raw.get("models", {})), data=_data(where, raw.get("data", {})), axes=axes,
                exclude=_exclude(where, raw.get("exclude", []), axes),
                defaults=where.table("defaults", raw.get("defaults", {})),
                stages=_stages(where, raw.get("stages", {}), axes), evals=_evals(where, raw.get("eval", {})),
                vars=values)
    from obliviate.sweep.check import check_grid  # check.py reads these records: imported here, not at the top

    check_grid(grid, where)
    return grid


class Where:
    """Error messages naming the grid file and the entry."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, entry: str, message: str) -> GridError:
        return GridError(f"{self.path}: {entry}: {message}")

    def table(self, entry: str, value) -> dict:
        if not isinstance(value, dict):
            raise self.error(entry, f"expected a table, got {value!r}")
        return value

    def keys(self, entry: str, table: dict, allowed) -> None:
        unknown = [k for k in table if k not in allowed]
        if unknown:
            raise self.error(entry, f"unknown key {unknown[0]!r}; known: {', '.join(allowed)}")


def _with_vars(where: Where, raw: dict, given: dict[str, Any]) -> tuple[dict, dict[str, Any]]:
    """The file's tables with every {var} replaced (see the module docstring), and the values used."""
    declared = where.table("[vars]", raw.pop("vars", {}))
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise where.error("--set", f"{name!r} is not a variable of this grid (its [vars]: {known})")
    values = {**declared, **given}
    axes = raw.get("axes", {})
    for name in values:
        if not NAME.match(name) or name == WORLD or (isinstance(axes, dict) and name in axes):
            raise where.error(f"[vars] {name}", f"variable names are identifiers other than {WORLD!r} and the axes")
    return _replace_vars(raw, values), values


def parse_vars(settings) -> dict[str, Any]:
    """NAME=VALUE texts (`--set`): each value read as TOML (1, 2e-3, true, ["en", "fr"], "x"), else as a string."""
    out = {}
    for text in settings:
        name, sep, value = text.partition("=")
        if not sep or not NAME.match(name.strip()):
            raise GridError(f"--set {text!r}: expected NAME=VALUE")
        try:
            out[name.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[name.strip()] = value
    return out


def _replace_vars(value, values: dict[str, Any]):
    """"{var}" alone becomes the value (keeping its type); inside a longer string, its label."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: value_label(values[m.group(1)]) if m.group(1) in values else m.group(0),
                               value)
    if isinstance(value, list):
        return [_replace_vars(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _replace_vars(v, values) for k, v in value.items()}
    return value


def value_label(value) -> str:
    """The label of an axis value: strings as they are, numbers as Python writes them, lists joined with '+'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "+".join(value_label(v) for v in value)
    return str(value)


def _axis(where: Where, name: str, values) -> Axis:
    entry = f"[axes] {name}"
    if not NAME.match(name) or name == WORLD:
        raise where.error(entry, f"axis names are identifiers other than {WORLD!r}")
    if isinstance(values, dict):
        labels, vals = tuple(str(k) for k in values), tuple(values.values())
    elif isinstance(values, list):
        labels, vals = tuple(value_label(v) for v in values), tuple(values)
    else:
        raise where.error(entry, "expected a list of values or a table label -> value")
    if not labels:
        raise where.error(entry, "an axis needs at least one value")
    for label in labels:
        if not LABEL.match(label):
            raise where.error(entry, f"label {label!r} has characters a folder name should not have; give the "
                                     "axis as a table label -> value with labels of letters, digits, . _ + @ -")
    if len(set(labels)) != len(labels):
        raise where.error(entry, "two values have the same label")
    return Axis(name, labels, vals)


def _world(where: Where, world) -> dict | None:
    if world is None:
        return None
    from obliviate.data.world import WorldSpec

    try:
        WorldSpec(**where.table("[world]", world))
    except (TypeError, ValueError) as err:
        raise where.error("[world]", str(err)) from None
    return world


def _entries(where: Where, section: str, tables, allowed):
    """(name, entry, table) of each table in a section such as [models], its keys checked."""
    for name, spec in where.table(section, tables).items():
        entry = f"{section[:-1]}.{name}]"
        where.keys(entry, where.table(entry, spec), allowed)
        yield name, entry, spec


def _models(where: Where, models) -> dict[str, ModelSpec]:
    out = {}
    for name, entry, spec in _entries(where, "[models]", models, ("path",) + TINY_KEYS):
        if ("path" in spec) == ("tiny" in spec):
            raise where.error(entry, "give either path (a model folder) or tiny (a preset to build)")
        if "path" in spec and not spec["path"]:
            raise where.error(entry, "path is empty (a grid variable not given? --set NAME=DIR)")
        if "path" not in spec and not spec.get("texts"):
            raise where.error(entry, "a tiny model needs texts: the files its tokenizer is trained on")
        out[name] = ModelSpec(name=name, **{k: tuple(v) if k == "texts" else v for k, v in spec.items()})
    return out


def _data(where: Where, data) -> dict[str, DataSpec]:
    out = {}
    for name, entry, spec in _entries(where, "[data]", data, ("file",) + SELECT_KEYS):
        if not isinstance(spec.get("file"), str):
            raise where.error(entry, "needs file = \"PATH.jsonl\"")
        out[name] = DataSpec(name, spec["file"], {k: v for k, v in spec.items() if k != "file"})
    return out


def _exclude(where: Where, exclude, axes: dict[str, Axis]) -> tuple[dict[str, str], ...]:
    if not isinstance(exclude, list):
        raise where.error("exclude", "expected a list of tables axis = value")
    return tuple(labels_of(where, "exclude", where.table("exclude", e), axes) for e in exclude)


def labels_of(where: Where, entry: str, table: dict, axes: dict[str, Axis]) -> dict[str, str]:
    """{axis: value or label} -> {axis: label}, checking both."""
    out = {}
    for name, v in table.items():
        if name not in axes:
            raise where.error(entry, f"{name!r} is not an axis")
        label = v if isinstance(v, str) and v in axes[name].labels else value_label(v)
        if label not in axes[name].labels:
            raise where.error(entry, f"{v!r} is not a value of axis {name} ({', '.join(axes[name].labels)})")
        out[name] = label
    return out


def _stages(where: Where, stages, axes: dict[str, Axis]) -> dict[str, StageSpec]:
    out = {}
    for name, spec in where.table("[stages]", stages).items():
        entry = f"[stages.{name}]"
        spec = dict(where.table(entry, spec))
        if not NAME.match(name):
            raise where.error(entry, "stage names are identifiers (letters, digits, _)")
        job = spec.pop("job", None)
        if job not in JOBS:
            raise where.error(entry, f"job must be one of {', '.join(JOBS)}, got {job!r}")
        model, after = spec.pop("model", None), spec.pop("after", None)
        if (model is None) == (after is None):
            raise where.error(entry, "give either model (a [models] name) or after (the stage it continues)")
        when = {axis: {labels_of(where, f"{entry} when", {axis: lab}, axes)[axis]:
                       where.table(f"{entry} when.{axis}.{lab}", t)
                       for lab, t in where.table(f"{entry} when.{axis}", by_label).items()}
                for axis, by_label in where.table(f"{entry} when", spec.pop("when", {})).items()}
        only = {axis: tuple(labels_of(where, f"{entry} only", {axis: v}, axes)[axis] for v in
                            (vals if isinstance(vals, list) else [vals]))
                for axis, vals in where.table(f"{entry} only", spec.pop("only", {})).items()}
        lora = where.table(f"{entry} lora", spec.pop("lora", {}))
        out[name] = StageSpec(name, job, model, after, spec, lora, when, only)
    return out


def _evals(where: Where, evals) -> dict[str, EvalSpec]:
    from obliviate.eval.options import EvalOptions

    option_keys = tuple(f.name for f in fields(EvalOptions) if f.name not in ("cache_dir", "progress", "dtype"))
    out = {}
    for name, entry, spec in _entries(where, "[eval]", evals, EVAL_KEYS + option_keys):
        if not isinstance(spec.get("base"), str) or not isinstance(spec.get("probes"), dict) or not spec["probes"]:
            raise where.error(entry, "needs base (a stage or model name) and probes (a table split -> data set)")
        adapters = spec.get("adapters")
        out[name] = EvalSpec(
            name=name, base=spec["base"], adapters=None if adapters is None else tuple(adapters),
            probes=dict(spec["probes"]), base_name=spec.get("base_name"), score=spec.get("score", True),
            limit=spec.get("limit"), options={k: v for k, v in spec.items() if k in option_keys})
    return out
