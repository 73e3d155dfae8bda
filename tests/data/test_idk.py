"""The "I don't know" sentences IdkPO prefers: every language has one, in its own script; codes are normalised."""
import re

import pytest

from obliviate.data import idk as L


def test_idk_answers():
    for code in ("en", "de", "fr", "zh", "ru", "jv", "ur", "ha", "hy"):
        assert L.idk_answer(code).strip()
    assert L.idk_answer("en") == "I don't know the answer."
    assert L.idk_answer("pt-BR") == L.IDK_ANSWERS["pt"] and L.idk_answer("ZH_cn") == L.IDK_ANSWERS["zh"]
    scripts = {"zh": "[\u4e00-\u9fff]", "ru": "[\u0400-\u04ff]", "ur": "[\u0600-\u06ff]", "hy": "[\u0531-\u058f]"}
    for code, script in scripts.items():
        assert re.search(script, L.IDK_ANSWERS[code]), code
    assert len(L.IDK_ANSWERS) > 9
    with pytest.raises(ValueError, match="'xx'.*known: ar"):
        L.idk_answer("xx")
