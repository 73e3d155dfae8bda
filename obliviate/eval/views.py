"""The views of an evaluation: pure functions from result rows to small tables.

A *row* is one probe answered by one model (`rows.ProbeRow`: model, split, language, kind, modality, correct,
says_fake, prob, ...). A view groups rows by two keys and averages one metric (a row field, named) over each cell,
ignoring rows where the metric is None (e.g. says_fake on an item that is not misinformation):

    language      model × probe language                (Lu & Koehn: does the fake spread to every language?)
    groups        model [its unlearning language set] × en / L / high / low
                  L = the fake-data language; high = de fr zh ru and low = jv ur ha hy, minus L
                  (the paper's finding: unlearning in en fixes en+high, not L+low; en+L fixes all four)
    modality      model × text / image probes            (OFFSIDE's unimodal setting)
    kind          model × shared / private attributes    (OFFSIDE's selective setting)
    split         model × probe file (forget, retain, holdout, ...)
    bounce-back   relearned model: metric after unlearning, after relearning, and the difference (OFFSIDE §5.3)

Nothing here touches a model or a file, so the demo and the HTML report rebuild every table from saved rows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Mapping, Sequence

from obliviate.data.schema import LANGUAGES
from obliviate.eval.rows import EvalMeta, ProbeRow, row_field
from obliviate.eval.score_metrics import auc, ks_forget_quality

GROUPS = ("en", "L", "high", "low")
MODALITIES = ("text", "image")
# Metrics averaged over rows, in the order the summary shows them (a metric absent from every row is skipped).
ROW_METRICS = ("correct", "says_fake", "says_truth", "mc_correct", "rouge1", "rouge2", "rougeL", "rougeL_recall",
               "bleu", "prob", "truth_ratio")
MIA_SCORES = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_pp")
Key = str | Callable[[ProbeRow], str | None]  # a row field's name, or a function of the row


@dataclass
class Table:
    """A titled matrix of means: values[i][j] averages `metric` over the rows in cell (rows[i], cols[j]), counts[i][j]
    of them; None where a cell has no row."""

    title: str
    metric: str
    row_name: str
    col_name: str
    rows: list[str]
    cols: list[str]
    values: list[list[float | None]]
    counts: list[list[int]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Table":
        return cls(**d)

    def cell(self, row: str, col: str) -> float | None:
        return self.values[self.rows.index(row)][self.cols.index(col)]


def _key(key: Key) -> Callable[[ProbeRow], str | None]:
    return key if callable(key) else row_field(key)


def _order(found: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """`order` first (those present), then the rest in order of first appearance."""
    found = list(dict.fromkeys(found))
    first = [x for x in order if x in found]
    return first + [x for x in found if x not in first]


def mean_table(rows: Sequence[ProbeRow], metric: str, *, row_key: Key = "model", col_key: Key,
               title: str | None = None, where: Callable[[ProbeRow], bool] | None = None,
               row_order: Sequence[str] = (), col_order: Sequence[str] = (), row_name: str | None = None,
               col_name: str | None = None) -> Table:
    """Mean of the row field `metric` (bool -> 0/1) per (row_key, col_key) cell; rows with a None metric or key are
    skipped. Titles and axis names default to ones made of the metric and the keys."""
    value, rk, ck = row_field(metric), _key(row_key), _key(col_key)
    sums: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if where is not None and not where(r):
            continue
        v, a, b = value(r), rk(r), ck(r)
        if v is None or a is None or b is None:
            continue
        cell = sums.setdefault((a, b), [0.0, 0])
        cell[0] += float(v)
        cell[1] += 1
    rlabels = _order((a for a, _ in sums), row_order)
    clabels = _order((b for _, b in sums), col_order)
    values = [[(sums[a, b][0] / sums[a, b][1]) if (a, b) in sums else None for b in clabels] for a in rlabels]
    counts = [[int(sums[a, b][1]) if (a, b) in sums else 0 for b in clabels] for a in rlabels]
    return Table(title or f"{metric} by {row_name or _name(row_key)} × {col_name or _name(col_key)}", metric,
                 row_name or _name(row_key), col_name or _name(col_key), rlabels, clabels, values, counts)


def _name(key: Key) -> str:
    return key if isinstance(key, str) else getattr(key, "__name__", "group")


def _split_is(split: str | None):
    return None if split is None else (lambda r: r.split == split)


def _suffix(split: str | None) -> str:
    return "" if split is None else f" ({split})"


# -- languages --------------------------------------------------------------------------------------------------

def language_group(language: str, fake_language: str | None = None) -> str:
    """en / L / high / low for the 9 world languages (L = the fake-data language, taken out of its group);
    "other" for any other code."""
    if fake_language is not None and language == fake_language:
        return "L"
    if language == "en":
        return "en"
    lang = LANGUAGES.get(language)
    return lang.group if lang is not None else "other"


def unlearn_label(languages: Iterable[str] | None, fake_language: str | None = None) -> str | None:
    """A model's unlearning language set as the paper names it: {en} -> "en", {fr} with L = fr -> "L",
    {en, fr} -> "en+L"; other languages by code. None when unknown."""
    if not languages:
        return None
    names = ["L" if x == fake_language else x for x in languages]
    return "+".join(sorted(set(names), key=lambda x: (x != "en", x != "L", x)))


def language_table(rows: Sequence[ProbeRow], metric: str, *, split: str | None = None) -> Table:
    """model × probe language."""
    return mean_table(rows, metric, col_key="language", where=_split_is(split), col_order=list(LANGUAGES),
                      title=f"{metric} by probe language{_suffix(split)}")


def group_table(rows: Sequence[ProbeRow], metric: str, *, fake_language: str | None = None,
                unlearn_languages: Mapping[str, Sequence[str]] | None = None, split: str | None = None) -> Table:
    """model (labelled with its unlearning language set) × probe-language group en / L / high / low."""
    unlearn_languages = unlearn_languages or {}

    def row_label(r):
        label = unlearn_label(unlearn_languages.get(r.model), fake_language)
        return r.model if label is None else f"{r.model} [{label}]"

    lname = f"L={fake_language}" if fake_language else "no L"
    return mean_table(rows, metric, row_key=row_label, col_key=lambda r: language_group(r.language, fake_language),
                      where=_split_is(split), col_order=GROUPS + ("other",), row_name="model [unlearned in]",
                      col_name="language group", title=f"{metric} by language group ({lname}){_suffix(split)}")


# -- modality, kind, split ---------------------------------------------------------------------------------------

def modality_table(rows: Sequence[ProbeRow], metric: str, *, split: str | None = None) -> Table:
    """model × text / image probes."""
    return mean_table(rows, metric, col_key="modality", where=_split_is(split), col_order=MODALITIES,
                      title=f"{metric} by probe modality{_suffix(split)}")


def kind_table(rows: Sequence[ProbeRow], metric: str, *, split: str | None = None) -> Table:
    """model × shared / private attributes."""
    return mean_table(rows, metric, col_key="kind", where=_split_is(split), col_order=("shared", "private"),
                      title=f"{metric} by attribute kind{_suffix(split)}")


def split_table(rows: Sequence[ProbeRow], metric: str) -> Table:
    """model × probe split."""
    return mean_table(rows, metric, col_key="split", col_order=("forget", "retain", "relearn", "holdout", "test"),
                      title=f"{metric} by split")


# -- relearning ---------------------------------------------------------------------------------------------------

def bounce_back(rows: Sequence[ProbeRow], metric: str, pairs: dict[str, str], *, split: str | None = None) -> Table:
    """For each relearned model R with unlearned model U = pairs[R]: the mean metric of U, of R, and R − U
    (OFFSIDE's bounce-back: how much of what was unlearned a relearning attack brings back), over `split`."""
    keep = _split_is(split)
    means = mean_table(rows, metric, col_key=lambda r: "all", where=keep)
    out_rows, values, counts = [], [], []
    for relearned, unlearned in pairs.items():
        if relearned not in means.rows or unlearned not in means.rows:
            continue
        u, r = means.cell(unlearned, "all"), means.cell(relearned, "all")
        out_rows.append(f"{unlearned} -> {relearned}")
        values.append([u, r, r - u])
        counts.append([means.counts[means.rows.index(unlearned)][0], means.counts[means.rows.index(relearned)][0], 0])
    return Table(f"{metric} bounce-back after relearning{_suffix(split)}", metric, "unlearned -> relearned", "stage",
                 out_rows, ["unlearned", "relearned", "bounce-back"], values, counts)


# -- membership inference and forget quality ----------------------------------------------------------------------

def mia_table(rows: Sequence[ProbeRow], *, member: str, nonmember: str) -> Table:
    """ROC AUC of each MIA score (members = rows of split `member`, e.g. forget; non-members = `nonmember`, e.g.
    holdout), per model. 0.5: the model cannot tell them apart (as if never trained on them); 1: fully exposed."""
    models = _order(r.model for r in rows)
    values, counts = [], []
    for m in models:
        vrow, crow = [], []
        for score in MIA_SCORES:
            get = row_field(score)
            pos = [get(r) for r in rows if r.model == m and r.split == member and get(r) is not None]
            neg = [get(r) for r in rows if r.model == m and r.split == nonmember and get(r) is not None]
            vrow.append(auc(pos, neg) if pos and neg else None)
            crow.append(len(pos) + len(neg) if pos and neg else 0)
        values.append(vrow)
        counts.append(crow)
    return Table(f"MIA AUC ({member} vs {nonmember})", "auc", "model", "score", models,
                 [s.removeprefix("mia_") for s in MIA_SCORES], values, counts)


def forget_quality_table(rows: Sequence[ProbeRow], *, reference: str, split: str = "forget") -> Table:
    """TOFU's forget quality per model: the KS-test p-value between its truth ratios on `split` and those of
    `reference` (a model trained on the retain set only). High = indistinguishable from it."""

    def ratios(m):
        return [r.truth_ratio for r in rows if r.model == m and r.split == split and r.truth_ratio is not None]

    ref = ratios(reference)
    models = [m for m in _order(r.model for r in rows) if m != reference]
    values, counts = [], []
    for m in models:
        mine = ratios(m)
        values.append([ks_forget_quality(mine, ref) if mine and ref else None])
        counts.append([len(mine)])
    return Table(f"forget quality vs {reference} ({split})", "ks_p", "model", "metric", models, ["forget quality"],
                 values, counts)


# -- everything at once ------------------------------------------------------------------------------------------

def present_metrics(rows: Sequence[ProbeRow], names: Sequence[str] = ROW_METRICS) -> list[str]:
    """The metrics among `names` that some row has."""
    return [m for m in names if any(row_field(m)(r) is not None for r in rows)]


def main_metric(rows: Sequence[ProbeRow]) -> str:
    """The metric a heatmap shows: the fake-rate when there are misinformation probes, else correctness when some
    probe has a fact `value`, else ROUGE-L recall (free answers only, as TOFU's)."""
    if any(r.says_fake is not None for r in rows):
        return "says_fake"
    return "correct" if any(r.correct is not None for r in rows) else "rougeL_recall"


def split_metrics(rows: Sequence[ProbeRow]) -> list[str]:
    """The metrics shown per split: the main one, correctness, ROUGE-L recall when some probe has no `value`
    (its `correct` is None), multiple-choice accuracy; those that apply, once each."""
    free = ["rougeL_recall"] if any(r.correct is None for r in rows) else []
    return present_metrics(rows, list(dict.fromkeys([main_metric(rows), "correct", *free, "mc_correct"])))


def all_views(rows: Sequence[ProbeRow], meta: EvalMeta) -> list[Table]:
    """Every table that applies to `rows`, using from `meta`: fake_language, the models' unlearning languages,
    relearn_pairs (bounce-back), mia = [member split, non-member split], reference (forget quality)."""
    rows = list(rows)
    if not rows:
        return []
    fake = meta.fake_language
    present = present_metrics(rows)
    splits = _order((r.split for r in rows), ("forget", "retain"))
    tables = [split_table(rows, m) for m in present]
    per_split = split_metrics(rows)
    for split in splits:
        for m in per_split:
            tables.append(language_table(rows, m, split=split))
            tables.append(group_table(rows, m, fake_language=fake, unlearn_languages=meta.unlearn_languages(),
                                      split=split))
            if len({r.modality for r in rows if r.split == split}) > 1:
                tables.append(modality_table(rows, m, split=split))
            if len({r.kind for r in rows if r.split == split}) > 1:
                tables.append(kind_table(rows, m, split=split))
    if meta.relearn_pairs:
        forget = "forget" if "forget" in splits else None
        for m in per_split + (["prob"] if "prob" in present else []):
            tables.append(bounce_back(rows, m, meta.relearn_pairs, split=forget))
    mia = meta.mia
    if mia and all(s in splits for s in mia) and any(r.mia_loss is not None for r in rows):
        tables.append(mia_table(rows, member=mia[0], nonmember=mia[1]))
    ref = meta.reference
    if ref and any(r.truth_ratio is not None for r in rows if r.model == ref):
        tables.append(forget_quality_table(rows, reference=ref))
    return [t for t in tables if t.rows]


def markdown(title: str, header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub-markdown table under a bold title (readable as plain text too)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [f"**{title}**", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)
