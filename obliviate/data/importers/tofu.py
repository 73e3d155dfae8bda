"""TOFU (Maini et al. 2024, arXiv 2401.06121; github.com/locuslab/tofu, Hugging Face locuslab/TOFU) -> items.

TOFU's files are JSON Lines despite the .json name (a JSON array is read too), one question-answer pair a line:

    full / retain90|95|99 / forget01|05|10 / holdout*:   {"question", "answer"}
    *_perturbed (forget, retain, real_authors, world_facts) add:
        "paraphrased_answer": str, "paraphrased_question": str (forget/retain only), "perturbed_answer": [str]

200 fictitious authors x 20 questions, in author order: full.json is authors 0..199, retain90/95/99 the first
180/190/198, forget10/05/01 the last 20/10/2. No field names the author, so the author is the record's position:
author = first_author + index // 20, where `first_author` defaults from the file name (forgetNN -> 200 - 2*NN,
anything else -> 0); a file whose author order differs needs `first_author` or it will be mislabelled.
real_authors / world_facts (the utility sets, real people and world facts) are not grouped: each record is its
own entity.

Mapping: entity "tofu_author_NNN" (or "{real_authors|world_facts}_NNN"), attribute "qNN" = the question's place in
its author's 20 (or "fact"), language en, value None (answers are free sentences), perturbed = perturbed_answer,
paraphrases = [paraphrased_question] (schema: paraphrases are other wordings of the *question*).
`paraphrased_answer`, TOFU's base answer for the truth ratio, has no field in the schema and is not imported.
kind: "private" for the fictitious authors (TOFU's premise: a person's biography that must be forgettable on
request), "shared" for real_authors / world_facts (public knowledge, the utility probes).
"""
from __future__ import annotations

import re
from pathlib import Path

from obliviate.data.importers.common import Imported, Record, Track, make_item, same

AUTHORS, PER_AUTHOR = 200, 20
_UNGROUPED = ("real_authors", "world_facts")


def first_author_for(src: str | Path) -> int:
    """TOFU's first author index for a file, from its name: forgetNN holds the last 2*NN authors."""
    m = re.match(r"forget(\d\d)", Path(src).name)
    return AUTHORS - 2 * int(m.group(1)) if m else 0


def convert_tofu(records: list[Record], *, src: str | Path, first_author: int | None = None,
                 track: Track = same) -> Imported:
    """TOFU question-answer records -> items (see the module docstring)."""
    ungrouped = next((g for g in _UNGROUPED if Path(src).name.startswith(g)), None)
    first = first_author_for(src) if first_author is None else first_author
    if not ungrouped and not 0 <= first < AUTHORS:
        raise ValueError(f"first_author must be in 0..{AUTHORS - 1}, got {first}")
    out = Imported()
    for rec in track(records):
        question, answer = rec.get("question").strip(), rec.get("answer").strip()
        if ungrouped:
            entity, attribute, kind = f"{ungrouped}_{rec.index:03d}", "fact", "shared"
        else:
            author = first + rec.index // PER_AUTHOR
            if author >= AUTHORS:
                raise rec.fail(f"author {author} is past TOFU's {AUTHORS} authors (record {rec.index + 1} from "
                               f"first author {first}, {PER_AUTHOR} records each; set first_author)")
            entity, attribute, kind = f"tofu_author_{author:03d}", f"q{rec.index % PER_AUTHOR:02d}", "private"
        paraphrases = [q.strip() for q in rec.strings("paraphrased_question") if q.strip() != question]
        out.add(rec, make_item(
            rec, id=f"{entity}.{attribute}.en.qa", entity=entity, attribute=attribute, kind=kind, language="en",
            question=question, answer=answer, paraphrases=paraphrases,
            perturbed=[a.strip() for a in rec.strings("perturbed_answer")]))
    return out
