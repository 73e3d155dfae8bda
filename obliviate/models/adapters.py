"""LoRA adapters and their stacks.

An obliviate experiment builds adapters on adapters: `learn` injects facts into a base model as adapter A,
`unlearn --adapter A` merges A into the base *in memory* and trains a new adapter B on top, `relearn --adapter B`
merges A then B and trains C. Each adapter folder is a plain peft adapter (loadable by `PeftModel.from_pretrained`
and by vLLM's `LoRARequest`) plus one small file, `obliviate_adapter.json`, that names the base model and the
adapters merged beneath it, in order. Anything that evaluates B therefore knows to merge A first.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from obliviate.files import adapter_dir, write_text
from obliviate.models.folders import check_adapter_folder, safetensors_header
from obliviate.models.options import LoraOptions

STACK_FILE = "obliviate_adapter.json"


@dataclass(frozen=True)
class AdapterStack:
    """A base model directory and the adapters merged into it, bottom first."""

    base: str
    parents: tuple[str, ...] = ()


def read_stack(model_path: str | Path, adapter: str | Path | None) -> AdapterStack:
    """The stack an adapter sits on, including the adapter itself as the top parent.

    A peft adapter made elsewhere (no obliviate_adapter.json) is taken to sit directly on `model_path`.
    """
    base = str(Path(model_path).resolve())
    if adapter is None:
        return AdapterStack(base)
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ValueError(f"{adapter}: not a peft adapter folder (no adapter_config.json)")
    meta = check_adapter_folder(adapter)
    parents: tuple[str, ...] = ()
    if meta is not None:
        if Path(meta["base"]).resolve() != Path(base):
            raise ValueError(f"{adapter}: adapter was trained on {meta['base']}, not on {base}")
        parents = tuple(meta["parents"])
    return AdapterStack(base, parents + (str(adapter.resolve()),))


def write_stack(adapter_dir: str | Path, stack: AdapterStack) -> None:
    """Record under `adapter_dir` which base and parent adapters it was trained on."""
    meta = {"base": stack.base, "parents": list(stack.parents)}
    write_text(Path(adapter_dir) / STACK_FILE, json.dumps(meta, indent=2) + "\n")


def check_placed(peft_model, adapter_dir: str | Path, adapter_name: str = "default") -> None:
    """Raise unless every tensor saved in `adapter_dir` found its module in `peft_model`.

    peft only warns when an adapter's tensors find no place (another architecture's module names) and then runs
    a no-op adapter; obliviate treats that as the error it is.
    """
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.is_file():
        return
    with safe_open(weights, "pt") as f:
        saved = set(f.keys())
    lost = saved - set(get_peft_model_state_dict(peft_model, adapter_name=adapter_name))
    if lost:
        raise ValueError(f"{adapter_dir}: adapter does not match the model: {len(lost)} of its {len(saved)} tensors "
                         f"have no place in {type(peft_model.get_base_model()).__name__} (e.g. {sorted(lost)[0]})")


def check_fits(meta: torch.nn.Module, adapter: str | Path) -> None:
    """Raise, naming the adapter, when one of its LoRA matrices does not fit the module it targets in `meta` (the
    base model on the meta device, `load.meta_model`): another model's adapter, found from the files alone."""
    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.is_file():
        return
    shapes = {name: list(m.weight.shape) for name, m in meta.named_modules() if isinstance(m, torch.nn.Linear)}
    for name, tensor in safetensors_header(weights).items():
        found = re.fullmatch(r"base_model\.model\.(.+)\.lora_([AB])\.weight", name)
        if found is None:
            continue
        module = shapes.get(found[1])
        side = 1 if found[2] == "A" else 0  # A: (r, in), B: (out, r); the module's weight is (out, in)
        if module is None or tensor["shape"][side] != module[side]:
            raise ValueError(f"{adapter}: adapter does not match the model: {name} is {tensor['shape']}, the "
                             f"module's weight is {module or 'missing'}")


def merge_parents(model: torch.nn.Module, parents: tuple[str, ...]) -> torch.nn.Module:
    """Merge each parent adapter into `model`'s weights, bottom first; returns the plain (non-peft) model."""
    from peft import PeftModel

    for parent in parents:
        try:
            wrapped = PeftModel.from_pretrained(model, parent, is_trainable=False)
        except (KeyError, RuntimeError, ValueError) as err:
            lines = str(err).strip().splitlines() or [type(err).__name__]
            first = next((x.strip() for x in lines if "mismatch" in x), lines[0])  # peft: the first size mismatch
            raise ValueError(f"{parent}: adapter does not match the model: {first}") from err
        check_placed(wrapped, parent)
        model = wrapped.merge_and_unload()
    return model


def add_trainable_lora(model: torch.nn.Module, options: LoraOptions):
    """Wrap `model` in a fresh peft LoRA adapter; only the adapter's parameters train."""
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in options.targets if t not in names]
    if missing:
        raise ValueError(f"LoRA target modules {missing} do not exist in {type(model).__name__}")
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        # Decoder layers only: Qwen2.5-VL's vision blocks also have gate/up/down projections, but they live under
        # `visual.blocks`, so matching `.layers.<i>.` keeps the vision tower frozen and adapter-free.
        target_modules=rf"^(?!.*visual).*\.layers\.\d+\..*\.({'|'.join(options.targets)})$",
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_tensors(peft_model) -> dict[str, torch.Tensor]:
    """The trainable adapter's tensors, by peft's names (what a checkpoint stores and tests compare)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def load_adapter_tensors(peft_model, tensors: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(peft_model, tensors)


def load_merged(model_path: str | Path, adapter: str | Path | None = None, *, dtype=None, device=None):
    """Load `model_path` with `adapter` and every adapter beneath it merged in: the model as it stands after a
    job, ready for evaluation (a `LoadedModel`). `adapter` may be a run folder holding adapter/."""
    from obliviate.models.load import load_model

    stack = read_stack(model_path, adapter_dir(adapter) if adapter is not None else None)
    loaded = load_model(stack.base, dtype=dtype, device=device)
    loaded.model = merge_parents(loaded.model, stack.parents).eval()
    return loaded
