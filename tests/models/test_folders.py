"""Model and adapter folder checks (obliviate.models.folders): every broken file ends in one message naming it."""
import json

import pytest
import torch
from safetensors.torch import save_file

from obliviate.models.folders import check_adapter_folder, check_model_folder, read_json, safetensors_header


def test_read_json_names_the_file(tmp_path):
    """Issue 10: garbage config.json / tokenizer.json said 'Expecting value: line 1 column 1' and no file."""
    for content, problem in (("garbage{", "not valid JSON (Expecting value at line 1 column 1)"),
                             ("[1, 2]", "expected a JSON object, got list"), ("", "not valid JSON")):
        (tmp_path / "config.json").write_text(content)
        with pytest.raises(ValueError) as e:
            read_json(tmp_path / "config.json")
        assert str(e.value).startswith(f"{tmp_path / 'config.json'}: {problem}")
    (tmp_path / "config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_json(tmp_path / "config.json")


def test_safetensors_header_finds_truncation_without_reading_the_weights(tmp_path):
    """Issue 10: a truncated model.safetensors / adapter_model.safetensors gave a SafetensorError traceback."""
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.zeros(64, 64), "b": torch.ones(3)}, path)
    header = safetensors_header(path)
    assert header["a"]["shape"] == [64, 64] and set(header) == {"a", "b"}
    whole = path.read_bytes()
    for cut, problem in ((len(whole) - 100, "truncated or damaged"), (50, "not a complete safetensors file"),
                         (0, "not a complete safetensors file"), (5, "not a complete safetensors file")):
        path.write_bytes(whole[:cut])
        with pytest.raises(ValueError, match=problem) as e:
            safetensors_header(path)
        assert str(e.value).startswith(f"{path}: ")
    path.write_bytes(len(b"not json").to_bytes(8, "little") + b"not json")
    with pytest.raises(ValueError, match="its header does not parse"):
        safetensors_header(path)
    path.write_bytes(whole + b"extra")
    with pytest.raises(ValueError, match="truncated or damaged"):
        safetensors_header(path)


def test_model_folder_checks_every_json_and_weight_file(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    save_file({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    assert check_model_folder(tmp_path) == {"model_type": "qwen2"}
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"tokenizer\.json: not valid JSON"):
        check_model_folder(tmp_path)


def test_adapter_folder_and_its_stack_file(tmp_path):
    """Issue 10: obliviate_adapter.json = {} gave a KeyError traceback."""
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "target_modules": ["q_proj"]}))
    save_file({"w": torch.zeros(2)}, tmp_path / "adapter_model.safetensors")
    assert check_adapter_folder(tmp_path) is None  # a peft adapter made elsewhere
    (tmp_path / "obliviate_adapter.json").write_text(json.dumps({"base": "/m", "parents": ["/a"]}))
    assert check_adapter_folder(tmp_path) == {"base": "/m", "parents": ["/a"]}
    for stack in ({}, {"base": "/m"}, {"base": 3, "parents": []}, {"base": "/m", "parents": [1]}):
        (tmp_path / "obliviate_adapter.json").write_text(json.dumps(stack))
        with pytest.raises(ValueError, match=r"obliviate_adapter\.json: expected \{\"base\""):
            check_adapter_folder(tmp_path)
    (tmp_path / "adapter_config.json").write_text("garbage{")
    with pytest.raises(ValueError, match=r"adapter_config\.json: not valid JSON"):
        check_adapter_folder(tmp_path)
