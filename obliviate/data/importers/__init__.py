"""Importers: public unlearning datasets -> obliviate JSONL (one `schema.Item` a line).

    fmt          source                                                     module
    offside      OFFSIDE generation sets: chat `messages` + `images`        offside
    offside-mc   OFFSIDE multiple-choice sets: Question/Options/Correct_Answer/images
    tofu         TOFU question/answer (+ paraphrased/perturbed) files       tofu
    news         Learn and Unlearn's news-truthful set (real/fake news, fake_keyword, sft_qas, probes)
                                                                            news

Each module's docstring gives its source layout, where the facts about it came from, and how fields map.
A source file may be a JSON array or JSON Lines. Bad input stops the import with one `DataError` naming the
source file and record ("src.json: record 7: missing 'Question'", or "src.jsonl:12: ..." for JSON Lines); the
output is written only after every record converted, atomically (`schema.write_items`), and loads with
`schema.load_items`. Images are copied beside the output, under images/, each atomically (`files.atomic_file`).
"""
from __future__ import annotations

import filecmp
import inspect
import shutil
import sys
from pathlib import Path
from typing import Callable

from obliviate.data.importers.common import Imported, Record, Track, read_records, same
from obliviate.data.importers.news import convert_news
from obliviate.data.importers.offside import convert_offside, convert_offside_mc
from obliviate.data.importers.tofu import convert_tofu
from obliviate.data.schema import write_items
from obliviate.files import atomic_file

Converter = Callable[..., Imported]
FORMATS: dict[str, Converter] = {
    "offside": convert_offside,
    "offside-mc": convert_offside_mc,
    "tofu": convert_tofu,
    "news": convert_news,
}
PROGRESS_MIN = 1000  # records; smaller files import without a progress bar unless asked


def options_of(fmt: str) -> list[str]:
    """The keyword options a format's converter takes (besides src and track)."""
    return [p for p in inspect.signature(_converter(fmt)).parameters if p not in ("records", "src", "track")]


def _converter(fmt: str) -> Converter:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    return FORMATS[fmt]


def convert(fmt: str, src: str | Path, *, track: Track = same, **options) -> Imported:
    """Read `src` and convert it to items in memory (nothing is written). `options` are the format's own
    (`options_of(fmt)`); an option of another format is a ValueError."""
    converter = _converter(fmt)
    wrong = sorted(set(options) - set(options_of(fmt)))
    if wrong:
        raise ValueError(f"format {fmt!r} takes no option {wrong[0]!r} "
                         f"(its options: {', '.join(options_of(fmt)) or 'none'})")
    records: list[Record] = read_records(src)
    if "src" in inspect.signature(converter).parameters:  # the formats whose file name or folder matters
        options["src"] = src
    return converter(records, track=track, **options)


def import_dataset(fmt: str, src: str | Path, out: str | Path, *, progress: bool | None = None,
                   **options) -> Imported:
    """Convert `src` (format `fmt`) and write the items to the JSONL file `out`, copying images to
    <out's folder>/images/. `progress`: show a progress bar on stderr (None = when stderr is a terminal and the
    file has at least PROGRESS_MIN records). Returns what was imported (`.items`, `.files`)."""
    track = same
    if progress or progress is None and sys.stderr.isatty():
        def track(records):
            records = list(records)
            if progress is None and len(records) < PROGRESS_MIN:
                return records
            from tqdm import tqdm
            return tqdm(records, desc=f"import {fmt}", unit="record", file=sys.stderr)
    imported = convert(fmt, src, track=track, **options)
    folder = Path(out).parent
    folder.mkdir(parents=True, exist_ok=True)
    for rel, source in imported.files.items():
        dest = folder / rel
        if dest.is_file() and filecmp.cmp(dest, source, shallow=False):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as original, atomic_file(dest) as copy:
            shutil.copyfileobj(original, copy)
    write_items(out, imported.items)
    return imported
