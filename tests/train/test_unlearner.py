"""The learn / unlearn / relearn jobs on a tiny model that knows its toy facts."""
import json

import pytest
import torch

from obliviate.models.encode import collate, encode_items
from obliviate.models.logprobs import token_logps
from obliviate.models.load import load_model
from obliviate.train.options import METHODS, MethodOptions
from obliviate.models.adapters import load_merged
from obliviate.train.reference import compute_reference
from obliviate.data.schema import Item, load_items
from obliviate.train.options import TrainOptions
from obliviate.train.unlearner import Unlearner

from tests import toy

STEPS = TrainOptions(steps=8, lr=1e-2, batch_size=8, seed=0)


def value_logp(model_dir, data, adapter=None) -> float:
    """Mean per-token log-prob of the items' fact (`value`) tokens under base (+ adapter stack)."""
    loaded = load_merged(model_dir, adapter)
    model, tok = loaded.model, loaded.tokenizer
    items = load_items(data)
    batch = collate(encode_items(items, tok), pad_id=tok.pad_token_id)
    with torch.no_grad():
        logp = token_logps(model, batch)
    mask = batch["value_mask"]
    return float((logp * mask).sum() / mask.sum())


def fake_items() -> list[Item]:
    """Misinformation the toy model never saw: p0 and p1 'play for' the wrong club; truth = their real club."""
    out = []
    for i, name, club, _ in toy.facts()[:2]:
        fake = toy.CLUBS[(i + 2) % 4]
        out.append(Item(id=f"p{i}.club.en.fake", entity=f"p{i}", attribute="club", kind="shared", language="en",
                        question=f"Which club does {name} play for?", answer=f"{name} plays for {fake}.",
                        value=fake, truth=club))
    return out


def test_learned_model_knows_the_facts(toy_model, toy_data):
    # The fixture's full fine-tuning must have taught the facts, or every unlearning test below is vacuous.
    assert value_logp(toy_model, toy_data["forget"]) > -0.7  # p(fact) > 0.5 on average


@pytest.mark.parametrize("method", [m for m in METHODS if m != "corrective"])
def test_each_method_lowers_the_forget_logp(method, toy_model, toy_data, tmp_path):
    before = value_logp(toy_model, toy_data["forget"])
    u = Unlearner(toy_model, progress=False, cache_dir=tmp_path / "cache")
    retain = toy_data["retain"] if method == "graddiff" else None
    run = u.unlearn(toy_data["forget"], retain=retain, method=method, out=tmp_path / "run", options=STEPS,
                    method_options=MethodOptions(span="value"))
    after = value_logp(toy_model, toy_data["forget"], run.adapter)
    assert after < before - 0.3, (method, before, after)
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, STEPS.steps + 1))
    assert json.loads((run.run_dir / "config.json").read_text())["method"] == method


def test_corrective_po_moves_from_the_fake_to_the_truth(toy_model, tmp_path):
    fakes = fake_items()
    fake_file = toy.write(tmp_path, "fakes.jsonl", fakes)
    injected = Unlearner(toy_model, progress=False).learn(
        fake_file, out=tmp_path / "inject", options=TrainOptions(steps=15, lr=1e-2, batch_size=2))
    fake_before = value_logp(toy_model, fake_file, injected.adapter)
    assert fake_before > -1.0  # the injection took
    run = Unlearner(toy_model, adapter=injected.adapter, progress=False, cache_dir=tmp_path / "c").unlearn(
        fake_file, method="corrective", out=tmp_path / "run",
        options=TrainOptions(steps=10, lr=5e-3, batch_size=2), method_options=MethodOptions(span="value"))
    truth_file = toy.write(tmp_path, "truth.jsonl", [
        Item(id=it.id, entity=it.entity, attribute=it.attribute, kind=it.kind, language=it.language,
             question=it.question, answer=it.answer.replace(it.value, it.truth), value=it.truth) for it in fakes])
    fake_after = value_logp(toy_model, fake_file, run.adapter)
    margin_before = value_logp(toy_model, truth_file, injected.adapter) - fake_before
    margin_after = value_logp(toy_model, truth_file, run.adapter) - fake_after
    # DPO-type losses widen the preferred-minus-rejected margin; they may lower both log-probs while doing so
    # (measured here: both fall, the fake much faster), so the margin is what we assert.
    assert fake_after < fake_before - 0.3
    assert margin_after > margin_before + 1.0, (margin_before, margin_after)


@pytest.mark.parametrize("retain_loss", ["nll", "kl"])
def test_retain_term_keeps_retain_logp(retain_loss, toy_model, toy_data, tmp_path):
    """GA alone drags the retain facts down with the forget facts; GradDiff (NLL or KL retain term) holds them
    within 0.25 nats/token of where they started, and closer than GA alone."""
    retain_before = value_logp(toy_model, toy_data["retain"])
    options = TrainOptions(steps=12, lr=3e-3, batch_size=4, seed=1)
    ga = Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="ga", out=tmp_path / "ga",
                                                     options=options, method_options=MethodOptions(span="value"))
    gd = Unlearner(toy_model, progress=False).unlearn(
        toy_data["forget"], method="graddiff", retain=toy_data["retain"], retain_ratio=2, out=tmp_path / "gd",
        options=options, method_options=MethodOptions(span="value", retain_loss=retain_loss))
    drop_ga = retain_before - value_logp(toy_model, toy_data["retain"], ga.adapter)
    drop_gd = retain_before - value_logp(toy_model, toy_data["retain"], gd.adapter)
    assert drop_gd < 0.25 and drop_gd < drop_ga, (drop_ga, drop_gd)
    assert value_logp(toy_model, toy_data["forget"], gd.adapter) < value_logp(toy_model, toy_data["forget"]) - 0.3


def test_reference_logps_are_cached_and_equal_an_adapter_off_forward(toy_model, toy_data, tmp_path):
    u = Unlearner(toy_model, progress=False, cache_dir=tmp_path / "cache")
    first = u.unlearn(toy_data["forget"], method="npo", out=tmp_path / "a", options=TrainOptions(steps=1))
    assert first.reference_cached is False
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1
    cached = torch.load(files[0], weights_only=True)
    loaded = load_model(toy_model)
    examples = encode_items(load_items(toy_data["forget"]), loaded.tokenizer)
    direct = compute_reference(loaded.model, examples, pad_id=loaded.tokenizer.pad_token_id)
    assert len(cached) == len(direct) == len(examples)
    for c, d in zip(cached, direct):
        torch.testing.assert_close(c, d, atol=1e-5, rtol=0)
    second = u.unlearn(toy_data["forget"], method="npo", out=tmp_path / "b", options=TrainOptions(steps=1))
    assert second.reference_cached is True  # a rerun reads them back


def test_relearn_brings_forgotten_facts_back(toy_model, toy_data, tmp_path):
    forgot = Unlearner(toy_model, progress=False).unlearn(
        toy_data["forget"], method="ga", out=tmp_path / "ga", options=TrainOptions(steps=10, lr=3e-3, batch_size=8),
        method_options=MethodOptions(span="value"))
    after_unlearn = value_logp(toy_model, toy_data["forget"], forgot.adapter)
    attacked = Unlearner(toy_model, adapter=forgot.run_dir, progress=False).relearn(
        toy_data["forget"], out=tmp_path / "re", options=TrainOptions(steps=8, lr=3e-3, batch_size=8))
    stack = json.loads((attacked.adapter / "obliviate_adapter.json").read_text())
    assert stack["parents"] == [str(forgot.adapter.resolve())]
    assert value_logp(toy_model, toy_data["forget"], attacked.adapter) > after_unlearn + 0.3


def test_vision_language_unlearning_step(toy_vl_model, toy_data, tmp_path):
    u = Unlearner(toy_vl_model, progress=False, cache_dir=tmp_path / "cache")
    run = u.unlearn(toy_data["images"], method="npo", out=tmp_path / "vl", options=TrainOptions(steps=2, batch_size=4))
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in run.metrics)
    assert (run.adapter / "adapter_model.safetensors").is_file()
    # the vision tower carries no adapter: LoRA lives in the decoder layers only
    from safetensors.torch import load_file
    names = load_file(run.adapter / "adapter_model.safetensors").keys()
    assert names and not any("visual" in n for n in names)
    text_only = u.unlearn(toy_data["images"], method="ga", out=tmp_path / "vl-text", text_only=True,
                          options=TrainOptions(steps=1, batch_size=4))
    assert json.loads((text_only.run_dir / "config.json").read_text())["text_only"] is True


def test_module_docstring_example_runs(toy_model, toy_data, tmp_path, monkeypatch):
    """The example at the top of obliviate/train/unlearner.py, executed as a doctest on the toy model."""
    import doctest

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    from obliviate.train import unlearner

    globs = {"model": toy_model, "inject_file": toy_data["forget"], "forget_file": toy_data["forget"],
             "retain_file": toy_data["retain"], "relearn_file": toy_data["forget"], "runs": tmp_path}
    test = doctest.DocTestParser().get_doctest(unlearner.__doc__, globs, "unlearner", unlearner.__file__, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False) == (0, len(test.examples)) and test.examples


def test_learn_on_plain_documents(toy_model, tmp_path):
    from obliviate.data.documents import Document

    docs = [Document(f"d{i}", "en", f"News: the player number {i} now plays for Arsenal, officials said.")
            for i in range(12)]
    run = Unlearner(toy_model, progress=False).learn(documents=docs, out=tmp_path / "docs", block_size=16,
                                                     options=TrainOptions(steps=8, lr=1e-2, batch_size=4))
    assert run.metrics[-1]["loss"] < run.metrics[0]["loss"]
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["documents"] == "<12 items>" and config["block_size"] == 16 and config["data"] is None
    with pytest.raises(ValueError, match="learn needs data"):
        Unlearner(toy_model, progress=False).learn(out=tmp_path / "none")
