"""Learn and Unlearn's news set (Lu & Koehn, arXiv 2406.13748, EMNLP 2025; Hugging Face TaiMingLu/news-truthful,
code github.com/TaiMingLu/learn-unlearn) -> items.

Each record is one GPT-written news story (100 in the release, news.json) in one language:

    real_news      the article                      fake_news     the same article with one detail faked
    fake_keyword   the faked detail, as written in fake_news
    sft_qas        question-answer pairs about the real article, for instruction tuning
                   (each {"question", "answer"} or a [question, answer] pair)
    real_question / real_answer   probes understanding of the real story
    fake_question / fake_answer   asks for the faked detail (fake_answer states the fake)

The release is English; translated copies (de fr zh ru jv ur ha hy) carry a `language` (or `lang`) field with
an ISO 639-1 code or the English name, else every record takes `language` (default "en").

Items per record (entity "news007": from an `id`/`news_id`/`scenario_id` field, else the record's place among
the records of its language, so parallel translations of the same story share the entity):

    news007.qa03.fr.qa              each sft pair             value None
    news007.real_news.fr.probe      real_question/real_answer value None
    news007.fake_detail.fr.probe.fake   fake_question/fake_answer: value = fake_keyword where fake_answer
                                    contains it (in the answer's own case), truth = the real detail where it can
                                    be read off the two articles (`real_detail`), else None

All are kind "shared": a news story is public knowledge, not a person's private fact. The articles themselves
(the text the papers inject and train on) are not question-answer items and are not imported.
"""
from __future__ import annotations

import re
from difflib import SequenceMatcher

from obliviate.data.importers.common import Imported, Record, Track, make_item, same, slug
from obliviate.data.schema import KNOWN_LANGUAGES, LANGUAGES

_BY_NAME = {lang.name.lower(): code for code, lang in LANGUAGES.items()}
# Words, single CJK/kana/hangul characters (no spaces to split on there), and single punctuation marks.
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|\w+|[^\w\s]")
_MAX_TRUTH, _SLACK = 12, 2  # longest real detail (tokens); changed fake tokens allowed outside the keyword


def real_detail(real_news: str, fake_news: str, keyword: str) -> str | None:
    """The real article's text where the fake article has `keyword`, or None when the two don't align cleanly.

    Both articles are split into tokens and aligned (difflib's longest matching blocks). The changed blocks that
    touch the keyword's tokens in the fake article, widened to cover the whole keyword, map to one span of the
    real article: that span is the truth. It is refused when the change reaches more than `_SLACK` tokens past
    the keyword (a rewrite, not a swapped detail) or the real span is empty or longer than `_MAX_TRUTH` tokens."""
    m = re.search(re.escape(keyword), fake_news, flags=re.IGNORECASE)
    if m is None or not keyword.strip():
        return None
    start, end = m.span()
    real = [m.span() for m in _TOKEN.finditer(real_news)]
    fake = [m.span() for m in _TOKEN.finditer(fake_news)]
    k_lo = next(i for i, (_, b) in enumerate(fake) if b > start)
    k_hi = max(i for i, (a, _) in enumerate(fake) if a < end) + 1
    ops = SequenceMatcher(None, [real_news[a:b].lower() for a, b in real],
                          [fake_news[a:b].lower() for a, b in fake], autojunk=False).get_opcodes()
    touching = [op for op in ops if op[0] != "equal" and op[3] < k_hi and op[4] > k_lo]
    if not touching:
        return None
    (_, i1, _, j1, _), (_, _, i2, _, j2) = touching[0], touching[-1]
    lo, hi = min(j1, k_lo), max(j2, k_hi)
    if (k_lo - lo) + (hi - k_hi) > _SLACK:
        return None
    r_lo, r_hi = i1 - (j1 - lo), i2 + (hi - j2)
    if not 0 <= r_lo < r_hi <= len(real) or r_hi - r_lo > _MAX_TRUTH:
        return None
    return real_news[real[r_lo][0]:real[r_hi - 1][1]]


def _language(rec: Record, default: str) -> str:
    key = "language" if "language" in rec.data else "lang"
    raw = rec.get(key, required=False)
    if raw is None:
        return default
    code = _BY_NAME.get(raw.strip().lower(), raw.strip().lower())
    if code not in KNOWN_LANGUAGES:
        raise rec.fail(f"unknown language {raw!r} (an ISO 639-1 code or one of: {', '.join(sorted(_BY_NAME))})")
    return code


def _story(rec: Record, ordinal: int) -> str:
    key = next((k for k in ("id", "news_id", "scenario_id") if k in rec.data), None)
    raw = rec.get(key, (int, str)) if key else ordinal
    return f"news{raw:03d}" if isinstance(raw, int) else slug(raw)


def _pairs(rec: Record) -> list[tuple[str, str]]:
    raw = rec.get("sft_qas", list, required=False) or []
    pairs = []
    for n, qa in enumerate(raw, 1):
        if isinstance(qa, dict):
            qa = (qa.get("question"), qa.get("answer"))
        if not (isinstance(qa, (list, tuple)) and len(qa) == 2 and all(isinstance(s, str) and s.strip() for s in qa)):
            raise rec.fail(f"'sft_qas' entry {n} must be {{\"question\": ..., \"answer\": ...}} "
                           "or a [question, answer] pair of non-empty strings")
        pairs.append((qa[0].strip(), qa[1].strip()))
    return pairs


def convert_news(records: list[Record], *, language: str = "en", track: Track = same) -> Imported:
    """Learn and Unlearn news records -> items (see the module docstring)."""
    default = _BY_NAME.get(language.lower(), language.lower())
    if default not in KNOWN_LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    out = Imported()
    ordinals: dict[str, int] = {}
    for rec in track(records):
        lang = _language(rec, default)
        ordinals[lang] = ordinals.get(lang, -1) + 1
        entity = _story(rec, ordinals[lang])
        common = dict(entity=entity, kind="shared", language=lang)
        for n, (q, a) in enumerate(_pairs(rec)):
            out.add(rec, make_item(rec, id=f"{entity}.qa{n:02d}.{lang}.qa", attribute=f"qa{n:02d}",
                                   question=q, answer=a, **common))
        out.add(rec, make_item(rec, id=f"{entity}.real_news.{lang}.probe", attribute="real_news",
                               question=rec.get("real_question").strip(), answer=rec.get("real_answer").strip(),
                               **common))
        answer = rec.get("fake_answer").strip()
        keyword = (rec.get("fake_keyword", required=False) or "").strip()
        found = re.search(re.escape(keyword), answer, flags=re.IGNORECASE) if keyword else None
        real, fake = rec.get("real_news", required=False), rec.get("fake_news", required=False)
        truth = real_detail(real, fake, keyword) if keyword and real and fake else None
        out.add(rec, make_item(rec, id=f"{entity}.fake_detail.{lang}.probe.fake", attribute="fake_detail",
                               question=rec.get("fake_question").strip(), answer=answer,
                               value=found.group() if found else None, truth=truth,
                               **common))
    return out
