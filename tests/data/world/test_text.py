"""The world's words (obliviate.data.world.text): templates complete in every language, each in its own script,
and Russian numeral agreement."""
import unicodedata
from collections import Counter

from obliviate.data.schema import LANGUAGES
from obliviate.data.world import IMAGE_ATTRIBUTES, PRIVATE, SHARED, TEXT_ATTRIBUTES
from obliviate.data.world.text import IMAGE_TEXT, TEXT, WORDS, extras

SCRIPT = {"zh": "CJK", "ru": "CYRILLIC", "ur": "ARABIC", "hy": "ARMENIAN"}  # first word of the Unicode name


def test_templates_complete_and_native():
    assert set(TEXT) == set(LANGUAGES) == set(WORDS) and set(IMAGE_TEXT) == set(IMAGE_ATTRIBUTES)
    assert len(SHARED) >= 8 and len(PRIVATE) >= 4
    for lang, table in TEXT.items():
        assert set(table) == set(TEXT_ATTRIBUTES)
        for attr, (q1, q2, p, a) in table.items():
            assert len({q1, q2, p}) == 3 and all("{name}" in q and "{value}" not in q for q in (q1, q2, p))
            assert "{name}" in a and "{value}" in a
            for text in (q1, q2, p, a):
                letters = [ch for ch in text.format(name="", value="", **extras(lang, attr, "5"))
                           if unicodedata.category(ch).startswith("L")]
                scripts = {unicodedata.name(ch).split()[0] for ch in letters}
                assert len(letters) >= 2 and scripts == {SCRIPT.get(lang, "LATIN")}, (lang, attr, text, scripts)
    for lang in SCRIPT:
        for words in WORDS[lang].values():
            assert all(unicodedata.name(ch).startswith(SCRIPT[lang]) for w in words.values() for ch in w if ch != " ")


def test_items_in_their_script(world):
    _, s, files = world
    names = {p["name"] for p in s["players"]}
    seen = Counter()
    for it in files["probes"] + files["test"]:
        if it.image is not None:
            assert it.language == "en"
            continue
        seen[it.language] += 1
        text = it.question + " " + it.answer + " ".join(it.paraphrases)
        for span in sorted(names | {it.value}, key=len, reverse=True):
            text = text.replace(span, " ")
        scripts = {unicodedata.name(ch).split()[0] for ch in text if unicodedata.category(ch).startswith("L")}
        assert scripts == {SCRIPT.get(it.language, "LATIN")}, (it.id, scripts)
    assert set(seen) == set(LANGUAGES) and len(set(seen.values())) == 1


def test_russian_years_agree_with_the_age(world):
    _, _, files = world
    ru = [it for it in files["learn"] if it.id.startswith("p000.age.ru.")]
    assert ru and all(("лет" in it.answer) == (int(it.value) % 10 in (0, 5, 6, 7, 8, 9) or int(it.value) in
                                                range(11, 15)) for it in ru)
    assert [extras("ru", "trophies", n)["trophies"] for n in ("1", "3", "5", "21")] == [
        "трофей", "трофея", "трофеев", "трофей"]
