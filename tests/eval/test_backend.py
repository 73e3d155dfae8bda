"""What the backends share: adapter stacks and their below-stack groups, run folders as adapters, requests, and the
choice of backend."""
import shutil

import pytest
import torch

from obliviate.eval.backend import (Request, choose_backend, group_by_below, is_vision_model, read_stacks,
                                    vllm_available)

from tests import toy


def test_groups_and_stacks(gen_setup):
    model, named = gen_setup
    stacks = read_stacks(model, {**named, "run": named["a1"]})
    groups = group_by_below(stacks, [None, "a0", "c", "a1"])
    assert groups == {(): [None, "a0", "a1"], (str(named["a0"].resolve()),): ["c"]}
    with pytest.raises(ValueError, match="non-empty strings"):
        read_stacks(model, {"": named["a0"]})


def test_run_folder_is_accepted(gen_setup, tmp_path):
    model, named = gen_setup
    run = tmp_path / "run"
    shutil.copytree(named["a1"], run / "adapter")
    stacks = read_stacks(model, {"r": run})
    assert stacks["r"].parents[-1] == str((run / "adapter").resolve())


def test_request_is_a_named_tuple():
    item = toy.text_items()[0]
    r = Request("a0", item)
    assert r.root is None and r == ("a0", item, None)
    adapter, it, root = Request(None, item, "folder")
    assert (adapter, it, root) == (None, item, "folder")


def test_choose_backend(gen_setup, toy_vl_model):
    model, _ = gen_setup
    assert not is_vision_model(model) and is_vision_model(toy_vl_model)
    assert choose_backend("hf", model) == "hf"
    cuda = torch.cuda.is_available()
    if not cuda:  # transformers is the faster on the CPU for a small vocabulary (measured; see choose_backend)
        assert choose_backend("auto", toy_vl_model) == choose_backend("auto", model) == "hf"
    assert choose_backend("auto", model) == ("vllm" if cuda and vllm_available() else "hf")
    assert choose_backend("vllm", model) == "vllm"
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tgi", model)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        is_vision_model(model.parent)


def test_auto_on_the_cpu_follows_the_vocabulary(tmp_path, monkeypatch):
    import json

    from obliviate.eval import backend

    monkeypatch.setattr(backend.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(backend, "vllm_available", lambda: True)
    for vocab, expected in ((49_152, "hf"), (262_144, "vllm")):
        (tmp_path / "config.json").write_text(json.dumps({"vocab_size": vocab}))
        assert backend.choose_backend("auto", tmp_path) == expected, vocab
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"vocab_size": 262_144}, "vision_config": {}}))
    assert backend.choose_backend("auto", tmp_path) == "hf"  # vision-language: transformers on the CPU
