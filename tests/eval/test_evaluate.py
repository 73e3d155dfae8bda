"""The Evaluator on a toy model that knows its facts, with a real inject -> unlearn -> relearn chain of runs."""
import json
from dataclasses import replace

import pytest
import torch

from obliviate.data.importers import convert
from obliviate.data.schema import Item, write_items
from obliviate.eval.backend import vllm_available
from obliviate.eval.backend import Request
from obliviate.eval.evaluate import Evaluator, read_probes, request_limits
from obliviate.eval.options import EvalOptions
from obliviate.eval.results import load_results
from obliviate.eval.rows import ROW_FIELDS, SCORE_FIELDS
from obliviate.train.options import TrainOptions
from obliviate.train.unlearner import Unlearner

from tests import toy
from tests.data.importers import FIX

SHORT = TrainOptions(steps=3, lr=1e-2, batch_size=8, seed=0)


def fakes(languages=("en", "fr")) -> list[Item]:
    """p0 and p1 'play for' a wrong club (value = the fake, truth = the real club)."""
    out = []
    for i, name, club, _ in toy.facts()[:2]:
        fake = toy.CLUBS[(i + 2) % 4]
        for lang in languages:
            q, a = ((f"Which club does {name} play for?", f"{name} plays for {fake}.") if lang == "en" else
                    (f"Pour quel club joue {name} ?", f"{name} joue pour {fake}."))
            out.append(Item(id=f"p{i}.club.{lang}.fake", entity=f"p{i}", attribute="club", kind="shared",
                            language=lang, question=q, answer=a, value=fake, truth=club,
                            perturbed=(a.replace(fake, club),)))
    return out


@pytest.fixture(scope="module")
def chain(toy_model, tmp_path_factory):
    """inject (French fakes, LoRA) -> ga_en (GA on the English fakes) -> rel (relearn the English fakes)."""
    root = tmp_path_factory.mktemp("chain")
    data = {name: root / f"{name}.jsonl" for name in ("inject", "forget_en", "forget", "holdout")}
    write_items(data["inject"], fakes(("fr",)))
    write_items(data["forget_en"], fakes(("en",)))
    write_items(data["forget"], fakes())
    held = toy.text_items(players=range(2, 8))
    held = [replace(it, options=(it.value, *[c for c in toy.CLUBS if c != it.value][:2]))
            if it.attribute == "club" else it for it in held]
    write_items(data["holdout"], held)
    cache = root / "cache"
    inject = Unlearner(toy_model, progress=False, cache_dir=cache).learn(data["inject"], out=root / "inject",
                                                                        options=SHORT)
    ga = Unlearner(toy_model, adapter=inject.adapter, progress=False, cache_dir=cache).unlearn(
        data["forget_en"], method="ga", out=root / "ga_en", options=SHORT)
    rel = Unlearner(toy_model, adapter=ga.run_dir, progress=False, cache_dir=cache).relearn(
        data["forget_en"], out=root / "rel", options=SHORT)
    return {"model": toy_model, "data": data, "root": root,
            "adapters": {"inject": inject.run_dir, "ga_en": ga.adapter, "rel": rel.run_dir}}


@pytest.fixture(scope="module")
def result(chain):
    ev = Evaluator(chain["model"], adapters=chain["adapters"], base_name="base",
                   options=EvalOptions(backend="hf", progress=False, device="cpu", max_new_tokens=12,
                                       cache_dir=chain["root"] / "cache"))
    res = ev.run([chain["data"]["forget"], chain["data"]["holdout"]], out=chain["root"] / "eval")
    ev.close()
    return res


def test_rows_and_metadata_from_the_runs(result, chain):
    assert len(result.rows) == 4 * (4 + 24)
    meta = result.meta
    assert list(meta.models) == ["base", "inject", "ga_en", "rel"]
    assert meta.fake_language == "fr"  # from the inject run's misinformation items
    assert meta.models["ga_en"]["unlearn_languages"] == ["en"]
    assert meta.unlearn_languages() == {"ga_en": ["en"]}
    assert meta.models["ga_en"]["method"] == "ga"
    assert meta.models["inject"]["job"] == "learn"
    assert meta.relearn_pairs == {"rel": "ga_en"}
    assert meta.mia == ["forget", "holdout"]
    assert meta.n_probes == {"forget": 4, "holdout": 24}
    assert meta.backend == "hf" and meta.max_new_tokens == 12 and meta.reference is None
    assert meta.versions["torch"] == torch.__version__


def test_row_metrics(result):
    base = [r for r in result.rows if r.model == "base"]
    held = [r for r in base if r.split == "holdout"]
    # the toy model learned the facts: its answers contain them
    assert sum(r.correct for r in held) / len(held) >= 0.75
    for r in held:
        assert r.correct == (r.value.lower() in r.generation.lower())
        assert 0 <= r.rougeL <= 1 and 0 <= r.bleu <= 1
        assert r.says_fake is None and r.truth_ratio is None
        assert r.answer_tokens > 0 and 0 < r.prob <= 1
    mc = [r for r in held if r.attribute == "club"]
    assert mc and all(r.mc_gold == "A" and r.mc_generation is not None for r in mc)
    assert all(r.mc_correct == (r.mc_choice == "A") for r in mc)
    assert all(r.mc_generation is None and r.mc_correct is None for r in held if r.attribute != "club")
    forget = [r for r in base if r.split == "forget"]
    # the base model never saw the fakes: it states the truth, not the fake
    assert all(r.says_fake is False for r in forget)
    assert sum(r.says_truth for r in forget) >= 3
    assert all(r.truth_ratio is not None and r.truth_value_logp is not None for r in forget)
    # the injection raised the fake's log-prob in every language, English included (it was taught in French)
    inj = {r.id: r for r in result.rows if r.model == "inject" and r.split == "forget"}
    for r in forget:
        assert inj[r.id].value_logp > r.value_logp


def test_results_json_round_trip(result, chain):
    path = chain["root"] / "eval" / "results.json"
    assert result.path == path
    loaded = load_results(chain["root"] / "eval")
    assert loaded.rows == result.rows and loaded.meta == result.meta
    assert loaded.tables == result.tables
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == ["meta", "tables", "rows"]
    assert list(data["rows"][0]) == list(ROW_FIELDS)  # every field, in field order (scores last)
    assert list(data["meta"]) == ["model", "backend", "models", "probes", "n_probes", "max_new_tokens",
                                  "mc_style", "text_only", "fake_language", "relearn_pairs", "mia", "reference",
                                  "versions", "date", "seconds"]
    assert data["meta"]["mc_style"] == "offside" and data["meta"]["text_only"] is False
    titles = [t.title for t in result.tables]
    assert "correct by split" in titles
    assert any(t.startswith("says_fake by language group (L=fr)") for t in titles)
    assert any("bounce-back" in t for t in titles)
    mia = result.table("MIA AUC")
    assert mia.rows == ["base", "inject", "ga_en", "rel"] and all(0 <= v <= 1 for v in mia.values[0])
    group = result.table("says_fake by language group (L=fr) (forget)")
    assert "ga_en [en]" in group.rows and group.cols == ["en", "L"]
    assert not list((chain["root"] / "eval").glob(".tmp-*"))  # no temp file left behind


@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed or does not import")
def test_vllm_backend_gives_the_same_rows(result, chain):
    ev = Evaluator(chain["model"], adapters=chain["adapters"], base_name="base",
                   options=EvalOptions(backend="vllm", progress=False, max_new_tokens=12,
                                       cache_dir=chain["root"] / "cache"))
    res = ev.run([chain["data"]["forget"]], score=False)
    ev.close()
    hf = {(r.model, r.id): r.generation for r in result.rows if r.split == "forget"}
    assert {(r.model, r.id): r.generation for r in res.rows} == hf
    assert res.meta.backend == "vllm" and res.rows[0].answer_logp is None
    assert not set(SCORE_FIELDS) & set(res.rows[0].to_dict())  # unscored rows carry no score fields


def test_bad_inputs(chain, toy_data, tmp_path):
    with pytest.raises(ValueError, match="also an adapter name"):
        Evaluator(chain["model"], adapters={"base": chain["adapters"]["inject"]}, base_name="base",
                  options=EvalOptions(backend="hf"))
    with pytest.raises(ValueError, match="reference model"):
        Evaluator(chain["model"], options=EvalOptions(backend="hf", reference="nobody"))
    with pytest.raises(ValueError, match="unknown backend"):
        Evaluator(chain["model"], options=EvalOptions(backend="tgi"))
    ev = Evaluator(chain["model"], options=EvalOptions(backend="hf", progress=False, device="cpu"))
    assert list(ev.models) == ["base"]  # no adapter: the base model, as "base"
    with pytest.raises(ValueError, match="has an image but"):
        ev.run([toy_data["images"]])
    (tmp_path / "a").mkdir()
    write_items(tmp_path / "a" / "forget.jsonl", fakes())
    with pytest.raises(ValueError, match="both named 'forget'"):
        read_probes([chain["data"]["forget"], tmp_path / "a" / "forget.jsonl"])
    assert list(read_probes({"x": chain["data"]["holdout"]}, limit=5)["x"][0]) == \
        list(read_probes([chain["data"]["holdout"]])["holdout"][0])[:5]


class WordTokenizer:
    """A stand-in tokenizer: one token per word."""

    def __call__(self, texts, add_special_tokens=True):
        return type("Encoded", (), {"input_ids": [t.split() for t in texts]})()


def test_generation_limits_follow_the_answers():
    short, long = toy.text_items()[0], replace(toy.text_items()[1], answer=" ".join(["word"] * 40), value=None)
    requests = [Request(None, short), Request("a", long), Request(None, replace(long, id="x#mc"))]
    assert request_limits(requests, WordTokenizer()) == [32, 96, 32]  # 2 × 40 -> 96; multiple choice: 32
    assert request_limits(requests, WordTokenizer(), max_new_tokens=7) == [7, 7, 7]
    assert request_limits([], WordTokenizer()) == []


def test_text_only_drops_picture_probes(toy_model, toy_data):
    ev = Evaluator(toy_model, options=EvalOptions(backend="hf", progress=False, device="cpu", max_new_tokens=4,
                                                  text_only=True))
    res = ev.run([toy_data["images"]], score=False)  # 4 picture probes and 8 text probes; a text-only model
    assert len(res.rows) == 8 and all(r.modality == "text" for r in res.rows) and res.meta.text_only is True
    pictures = toy_data["folder"] / "pictures.jsonl"
    write_items(pictures, toy.image_items(toy_data["folder"]))
    with pytest.raises(ValueError, match="no probe left after dropping image items \\(--text-only\\)"):
        ev.run([pictures], score=False)
    ev.close()


def test_free_answers_get_rouge_recall_and_the_paraphrase_truth_ratio(toy_model, tmp_path):
    """TOFU items (no `value`): `correct` stays empty, ROUGE-L recall measures them, and the truth ratio's base is
    the paraphrased answer."""
    items = convert("tofu", FIX / "tofu" / "forget01_perturbed.json").items[:3]
    write_items(tmp_path / "forget.jsonl", items)
    ev = Evaluator(toy_model, options=EvalOptions(backend="hf", progress=False, device="cpu"))
    res = ev.run([tmp_path / "forget.jsonl"])
    ev.close()
    assert all(r.correct is None and 0 <= r.rougeL_recall <= 1 for r in res.rows)
    assert all(r.paraphrase_prob is not None and r.truth_ratio is not None for r in res.rows)
    titles = [t.title for t in res.tables]
    assert "rougeL_recall by split" in titles and "correct by split" not in titles
    assert res.table("rougeL_recall by probe language (forget)").rows == ["base"]
    assert res.meta.max_new_tokens is None
