"""The HTML report: self-contained, its tables match the views, and its plots decode in a real browser."""
import base64
import re
import shutil
import subprocess

import pytest

from obliviate.eval import views
from obliviate.eval.report import merge_results, render_report, write_report
from obliviate.eval.results import EvalResult, write_results
from obliviate.eval.rows import EvalMeta

from tests.eval.sample_rows import make_row

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Written into the page (a copy, for the test only): after load, the body carries every <img>'s decoded width.
PROBE_JS = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-imgs', "
            "Array.from(document.images).map(i => i.complete + ':' + i.naturalWidth).join(',')));</script>")


def rows_for(models, *, fake_model=None):
    out = []
    for m in models:
        for lang in ("en", "fr", "de", "jv"):
            for split in ("forget", "retain"):
                fake = (m == fake_model) if split == "forget" else None
                out.append(make_row(model=m, split=split, id=f"{lang}.{split}", language=lang,
                                    modality="image" if lang == "de" else "text", kind="shared",
                                    question="Who <b>?", generation="x & y", correct=split == "retain",
                                    says_fake=fake, mc_correct=None, prob=0.5, mia_loss=-1.0))
    return out


@pytest.fixture
def results(tmp_path):
    a = EvalResult(rows_for(["base", "ga_en", "rel"], fake_model="rel"),
                   EvalMeta(model="m", fake_language="fr", relearn_pairs={"rel": "ga_en"},
                            models={"base": {"job": "base"}, "ga_en": {"job": "unlearn", "method": "ga",
                                                                       "unlearn_languages": ["en"], "stack": ["x"]},
                                    "rel": {"job": "relearn", "stack": ["x", "y"]}}))
    b = EvalResult(rows_for(["base", "npo_en"]), EvalMeta(model="m", fake_language="fr",
                                                          models={"base": {}, "npo_en": {}}))
    write_results(a, tmp_path / "ga")
    write_results(b, tmp_path / "npo")
    return a, b


def test_report_is_self_contained_and_merges_runs(results, tmp_path):
    text = render_report(list(results), title="Test <report>")
    assert "<title>Test &lt;report&gt;</title>" in text
    assert "Who &lt;b&gt;?" in text and "x &amp; y" in text  # everything escaped
    assert not re.search(r'(src|href)="(?!data:)', text)  # no external resource
    # "base" is in both runs: prefixed with the run folder; the others keep their names
    assert "ga/base" in text and "npo/base" in text and ">ga_en<" in text
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(imgs) >= 3  # heatmap, method comparison, bounce-back
    for b64 in imgs:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    rows, meta = merge_results(list(results))
    assert {r.model for r in rows} == {"ga/base", "npo/base", "ga_en", "rel", "npo_en"}
    assert meta.relearn_pairs == {"rel": "ga_en"} and meta.fake_language == "fr" and meta.model == "m"
    n_tables = len(views.all_views(rows, meta))
    assert text.count("<table class=view") == n_tables > 5
    out = write_report([tmp_path / "ga", tmp_path / "npo" / "results.json"], tmp_path / "r" / "report.html")
    assert out.read_text(encoding="utf-8").count("<table class=view") == n_tables


def test_report_names_the_multiple_choice_style():
    mc = [make_row(model="base", id="q", mc_generation="B", mc_choice="B", mc_gold="B", mc_correct=True)]
    offside = EvalResult(mc, EvalMeta(model="m", mc_style="offside"))
    assert "multiple choice: OFFSIDE&#x27;s prompt and parser;" in render_report(offside)
    old = EvalResult(mc, EvalMeta(model="m"))  # results written before the style was recorded used "lenient"
    assert "multiple choice: lenient prompt and parser;" in render_report(old)
    assert "multiple choice: none;" in render_report(EvalResult(rows_for(["base"]), EvalMeta(model="m")))
    assert merge_results([offside, old])[1].mc_style == "lenient + offside"


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no evaluation results"):
        write_report([tmp_path], tmp_path / "x.html")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="not an obliviate results file"):
        write_report([tmp_path], tmp_path / "x.html")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    text = render_report(list(results))
    page = tmp_path / "page.html"
    page.write_text(text.replace("</body>", PROBE_JS + "</body>"), encoding="utf-8")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    widths = re.search(r'data-imgs="([^"]*)"', dom)
    assert widths, f"the page script did not run; chromium printed: {dom[:300]!r}"
    decoded = [w.split(":") for w in widths.group(1).split(",")]
    assert len(decoded) == text.count("<img ") >= 3
    assert all(done == "true" and int(width) > 100 for done, width in decoded), decoded
    assert dom.count('<table class="view"') == text.count("<table class=view")
    assert "<td" in dom and "bounce-back" in dom
