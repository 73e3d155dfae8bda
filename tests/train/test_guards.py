"""Each guard stops before any work with one clear message; divergence stops with the last checkpoint kept."""
import json
import shutil

import pytest

from obliviate.data.schema import Item, load_items
from obliviate.train.loop import Diverged
from obliviate.train.options import MethodOptions, TrainOptions
from obliviate.train.unlearner import Unlearner

from tests import toy


def test_empty_forget_set_after_text_only(toy_vl_model, toy_data, tmp_path):
    only_images = toy.write(tmp_path, "img.jsonl", toy.image_items(tmp_path))
    u = Unlearner(toy_vl_model, progress=False)
    with pytest.raises(ValueError, match=r"img\.jsonl: the forget set is empty after dropping image items"):
        u.unlearn(only_images, method="ga", out=tmp_path / "run", text_only=True)
    assert not (tmp_path / "run").exists()


def test_empty_forget_list(toy_model, tmp_path):
    with pytest.raises(ValueError, match="the forget set is empty"):
        Unlearner(toy_model, progress=False).unlearn([], method="ga", out=tmp_path / "run")


def test_a_base_model_without_chat_template_learns_in_the_plain_format(toy_model, toy_data, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(toy_model, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    u = Unlearner(bare, progress=False)
    run = u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=6, lr=1e-2, batch_size=4))
    assert json.loads((run.run_dir / "config.json").read_text())["prompt_format"] == "plain"
    assert run.metrics[-1]["loss"] < run.metrics[0]["loss"]
    from obliviate.models.encode import encode_items

    text = u.tokenizer.decode(encode_items(load_items(toy_data["forget"])[:1], u.tokenizer)[0].input_ids)
    assert text.startswith("Question: ") and "\nAnswer: " in text  # no BOS: the tiny model's config names none


def test_adapter_that_does_not_match_the_model(toy_model, toy_vl_model, toy_data, tmp_path):
    vl_run = Unlearner(toy_vl_model, progress=False).learn(toy_data["images"], out=tmp_path / "vl",
                                                          options=TrainOptions(steps=1, batch_size=2))
    with pytest.raises(ValueError, match="adapter was trained on .*, not on"):
        Unlearner(toy_model, adapter=vl_run.adapter, progress=False)


def test_retain_ratio_without_retain_set(toy_model, toy_data, tmp_path):
    with pytest.raises(ValueError, match="--retain-ratio needs a retain set"):
        Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="npo", retain_ratio=3,
                                                     out=tmp_path / "run")
    with pytest.raises(ValueError, match="graddiff needs a retain set"):
        Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="graddiff", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_corrective_needs_truth(toy_model, toy_data, tmp_path):
    with pytest.raises(ValueError, match=r"forget\.jsonl: record p0\.club\.en has no truth/value"):
        Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="corrective", out=tmp_path / "r")


def test_runaway_gradient_ascent_stops_and_keeps_the_checkpoint(toy_model, toy_data, tmp_path):
    options = TrainOptions(steps=200, lr=0.02, batch_size=8, save_every=2, divergence=1.0, schedule="constant")
    with pytest.raises(Diverged, match=r"fell below .* the model is collapsing.*last good checkpoint kept in .*run/ckpt-"):
        Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="ga", out=tmp_path / "run",
                                                     options=options, method_options=MethodOptions(span="value"))
    assert list((tmp_path / "run").glob("ckpt-*")), "the last good checkpoint must stay"
    assert not (tmp_path / "run" / "adapter").exists()


def test_foreign_adapter_without_stack_file_fails_before_the_run_folder(toy_model, toy_vl_model, toy_data, tmp_path):
    vl_run = Unlearner(toy_vl_model, progress=False).learn(toy_data["images"], out=tmp_path / "vl",
                                                          options=TrainOptions(steps=1, batch_size=2))
    foreign = tmp_path / "foreign"
    shutil.copytree(vl_run.adapter, foreign)
    (foreign / "obliviate_adapter.json").unlink()  # a peft adapter made elsewhere: nothing says what it sits on
    u = Unlearner(toy_model, adapter=foreign, progress=False)
    with pytest.raises(ValueError, match="adapter does not match the model"):
        u.unlearn(toy_data["forget"], method="ga", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- issue 10: run folders that validate before they exist, resume only themselves, never publish NaN ---------------

def test_an_example_longer_than_the_model_is_refused_before_the_run_folder(toy_model, toy_data, tmp_path):
    """Issue 10: a 100,000-token question asked for 10 GB and died. The rule: refuse, never truncate."""
    long = toy.write(tmp_path, "long.jsonl", [Item(id="long", entity="p0", attribute="club", kind="shared",
                                                   language="en", question="Which club? " * 3000, answer="Arsenal.")])
    with pytest.raises(ValueError, match=r"long\.jsonl: record long takes \d+ tokens, more than the 2048 positions"):
        Unlearner(toy_model, progress=False).learn(long, out=tmp_path / "run", options=TrainOptions(steps=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.jsonl"]


def test_resume_of_a_finished_run_does_nothing_and_force_reruns_it(toy_model, toy_data, tmp_path):
    """Issue 10: --resume on a finished run retrained it and replaced adapter, config and metrics."""
    u = Unlearner(toy_model, progress=False)
    first = u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=2, batch_size=4))
    weights = first.adapter / "adapter_model.safetensors"
    before = (weights.read_bytes(), weights.stat().st_mtime_ns, (tmp_path / "run" / "config.json").read_bytes())
    again = u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=2, batch_size=4), resume=True)
    assert again.finished_before and [m["step"] for m in again.metrics] == [1, 2]
    assert (weights.read_bytes(), weights.stat().st_mtime_ns, (tmp_path / "run" / "config.json").read_bytes()) == before
    with pytest.raises(FileExistsError, match="holds a finished run; use --force"):
        u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=2, batch_size=4))
    forced = u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=3, batch_size=4), force=True)
    assert not forced.finished_before and len(forced.metrics) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_resume_refuses_other_data_or_options_then_continues_its_own(toy_model, toy_data, tmp_path, monkeypatch):
    """Issue 10: resuming a killed run with another --data or --lr continued silently."""
    from obliviate.train import loop

    saved = loop.save_checkpoint

    def save_then_crash(run_dir, step, *args, **kw):
        saved(run_dir, step, *args, **kw)
        raise KeyboardInterrupt("killed after the first checkpoint")

    options = TrainOptions(steps=3, batch_size=4, save_every=1)
    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    u = Unlearner(toy_model, progress=False)
    with pytest.raises(KeyboardInterrupt):
        u.learn(toy_data["forget"], out=tmp_path / "run", options=options)
    monkeypatch.setattr(loop, "save_checkpoint", saved)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["ckpt-0000001", "config.json", "metrics.jsonl"]
    with pytest.raises(ValueError, match=r"cannot resume this run .*options\.lr: 0\.0001 -> 0\.001"):
        u.learn(toy_data["forget"], out=tmp_path / "run", options=TrainOptions(steps=3, batch_size=4, save_every=1,
                                                                              lr=1e-3), resume=True)
    with pytest.raises(ValueError, match=r"cannot resume this run .*hashes\.data"):
        u.learn(toy_data["retain"], out=tmp_path / "run", options=options, resume=True)
    with pytest.raises(FileExistsError, match="holds an unfinished run \\(continue it with --resume\\)"):
        u.learn(toy_data["forget"], out=tmp_path / "run", options=options)
    done = u.learn(toy_data["forget"], out=tmp_path / "run", options=options, resume=True)
    assert [m["step"] for m in done.metrics] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["adapter", "config.json", "done.json",
                                                                    "metrics.jsonl"]


def test_divergence_without_checkpoints_leaves_nothing(toy_model, toy_data, tmp_path):
    options = TrainOptions(steps=50, lr=0.05, batch_size=8, divergence=0.5, schedule="constant")
    with pytest.raises(Diverged, match=r"run: diverged at step \d+: forget log-prob .*; nothing written"):
        Unlearner(toy_model, progress=False).unlearn(toy_data["forget"], method="ga", out=tmp_path / "run",
                                                     options=options, method_options=MethodOptions(span="value"))
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []


def test_a_reference_that_is_no_model_is_refused_at_once(toy_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        Unlearner(toy_model, reference=tmp_path, progress=False)
