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
`schema.load_items`. Images are copied beside the output, under images/, each atomically (`files.atomic_file`),
only from inside the source's image folder and only when they open as pictures (`schema.check_picture`).
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Callable

from obliviate.data.importers.common import Imported, Record, Track, read_records, same
from obliviate.data.importers.news import convert_news
from obliviate.data.importers.offside import convert_offside, convert_offside_mc
from obliviate.data.importers.tofu import convert_tofu
from obliviate.data.schema import write_items
from obliviate.files import atomic_file, make_parents, remove_empty
from obliviate.locks import folder_lock

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


def import_dataset(fmt: str, src: str | Path, out: str | Path, *, progress: bool | None = None, force: bool = False,
                   **options) -> Imported:
    """Convert `src` (format `fmt`) and write the items to the JSONL file `out`, copying images to
    <out's folder>/images/. `progress`: show a progress bar on stderr (None = when stderr is a terminal and the
    file has at least PROGRESS_MIN records). A file already there with other content (`out` or an image) is
    replaced only with `force`; on any failure the files this import created are removed again. Returns what was
    imported (`.items`, `.files`)."""
    track = same
    if progress or progress is None and sys.stderr.isatty():
        def track(records):
            records = list(records)
            if progress is None and len(records) < PROGRESS_MIN:
                return records
            from tqdm import tqdm
            return tqdm(records, desc=f"import {fmt}", unit="record", file=sys.stderr)
    imported = convert(fmt, src, track=track, **options)
    out = Path(out)
    made = make_parents(out)
    created: list[Path] = []
    try:
        with folder_lock(out):
            _refuse_other(out, "".join(it.to_json() + "\n" for it in imported.items).encode(), force)
            for rel, source in imported.files.items():
                dest, picture = out.parent / rel, source.read_bytes()
                if _refuse_other(dest, picture, force):
                    continue
                made += make_parents(dest)
                created += [] if dest.exists() else [dest]
                with atomic_file(dest) as copy:
                    copy.write(picture)
            write_items(out, imported.items)
    except BaseException:
        for f in created:
            f.unlink(missing_ok=True)
        remove_empty(made)
        raise
    return imported


def _refuse_other(path: Path, content: bytes, force: bool) -> bool:
    """Whether `path` already holds `content` (nothing to write); raises when it holds other content and not
    `force`."""
    if not path.exists():
        return False
    if path.is_file() and path.read_bytes() == content:
        return True
    if not force:
        raise FileExistsError(f"{path}: already exists with other content (use --force to replace it)")
    return False
