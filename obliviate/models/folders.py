"""The files of model and adapter folders, checked before anything loads them, so that a broken one ends in one
message naming the file: JSON that does not parse or is not an object, safetensors files that are truncated or are
no safetensors at all, a stack file (`obliviate_adapter.json`) without its fields.

A safetensors file is 8 bytes (little-endian header length n), n bytes of JSON header (name -> dtype, shape,
data_offsets [begin, end) into the data), then the data; a complete file ends exactly where the last tensor does.
Checking that costs one small read, whatever the size of the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

MAX_HEADER = 100 * 2**20  # bytes; safetensors itself refuses headers over 100 MB
# JSON files a model folder may hold, each read by transformers / peft with messages that do not name the file.
MODEL_JSON = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json", "preprocessor_config.json")


def read_json(path: str | Path) -> dict:
    """A JSON object from `path`; a ValueError naming the file when it does not parse or is not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def safetensors_header(path: str | Path) -> dict[str, dict]:
    """The tensors a safetensors file holds (name -> {dtype, shape, data_offsets}); a ValueError naming the file
    when it is empty, truncated, or no safetensors file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or n > min(size - 8, MAX_HEADER):
            raise ValueError(f"{path}: not a complete safetensors file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
            tensors = {k: v for k, v in header.items() if k != "__metadata__"}
            end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ValueError(f"{path}: not a safetensors file (its header does not parse)") from None
    if 8 + n + end != size:
        raise ValueError(f"{path}: truncated or damaged: {size} bytes, its header describes {8 + n + end}")
    return tensors


def check_model_folder(path: str | Path) -> dict:
    """Check a model folder's JSON files and safetensors headers; returns config.json's content."""
    path = Path(path)
    for name in MODEL_JSON:
        if (path / name).is_file():
            read_json(path / name)
    for weights in sorted(path.glob("*.safetensors")):
        safetensors_header(weights)
    return read_json(path / "config.json")


def check_adapter_folder(path: str | Path) -> dict | None:
    """Check a peft adapter folder (adapter_config.json, adapter_model.safetensors, obliviate_adapter.json);
    returns the stack file's content ({"base": str, "parents": [str]}) or None when it has none."""
    path = Path(path)
    config = read_json(path / "adapter_config.json")
    if not isinstance(config.get("r", 8), int) or not config.get("target_modules", True):
        raise ValueError(f"{path / 'adapter_config.json'}: not a LoRA adapter configuration (r, target_modules)")
    if (path / "adapter_model.safetensors").is_file():
        safetensors_header(path / "adapter_model.safetensors")
    stack_file = path / "obliviate_adapter.json"
    if not stack_file.is_file():
        return None
    stack = read_json(stack_file)
    parents = stack.get("parents")
    if not isinstance(stack.get("base"), str) or not isinstance(parents, list) or not all(
            isinstance(p, str) for p in parents):
        raise ValueError(f"{stack_file}: expected {{\"base\": model folder, \"parents\": [adapter folders]}}, got "
                         f"{json.dumps(stack)[:80]}")
    return stack
