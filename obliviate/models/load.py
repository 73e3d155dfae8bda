"""Loading any local Hugging Face model directory (text or vision-language) with its tokenizer and, for
vision-language models, the torchvision-free image processor: local files only, safetensors only, no remote code.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer, PreTrainedTokenizerFast

from obliviate.models.encode import plain_template
from obliviate.models.folders import check_model_folder, safetensors_header
from obliviate.models.vision import VisionProcessor


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerFast
    processor: VisionProcessor | None  # images -> pixel_values; None for text-only models
    is_vision: bool
    path: Path


def attn_implementation(device: torch.device) -> str:
    """flash_attention_2 where flash-attn imports and the model sits on CUDA, else PyTorch SDPA."""
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        try:
            import flash_attn  # noqa: F401
            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _check_dir(path: Path) -> dict:
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model directory")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json (not a Hugging Face model directory)")
    if not any(path.glob("*.safetensors")):
        found = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        hint = f" (found {', '.join(found)}: convert them to safetensors)" if found else ""
        raise FileNotFoundError(f"{path}: no *.safetensors weights{hint}")
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise FileNotFoundError(f"{path}: no tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    return check_model_folder(path)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _check_shapes(path: Path, meta: torch.nn.Module) -> None:
    """Raise, naming the file and the tensor, when a weight's shape differs from the one config.json gives it
    (transformers would print a table and raise a message that names neither)."""
    expected = {k: list(v.shape) for k, v in meta.state_dict().items()}
    for weights in sorted(path.glob("*.safetensors")):
        for name, tensor in safetensors_header(weights).items():
            if name in expected and list(tensor["shape"]) != expected[name]:
                raise ValueError(f"{weights}: {name} is {tensor['shape']} but config.json makes it {expected[name]}: "
                                 "the config does not match the weights")


def meta_model(path) -> torch.nn.Module:
    """The model a folder's config.json describes, built on the meta device: every shape, no memory, no weights."""
    path = Path(path)
    is_vis = _is_vision(path, check_model_folder(path))
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # transformers' config validators raise their own exception classes
        raise ValueError(f"{path / 'config.json'}: {_first_line(err)}") from None
    with torch.device("meta"):
        return (AutoModelForImageTextToText if is_vis else AutoModelForCausalLM).from_config(config)


def max_positions(path) -> int | None:
    """The longest token sequence a model folder's config.json allows (max_position_embeddings, for a
    vision-language model its text config's), or None when it states none."""
    config = check_model_folder(path)
    return config.get("max_position_embeddings") or config.get("text_config", {}).get("max_position_embeddings")


# Vision-language families whose inputs vision.py builds (the Qwen2-VL patching and M-RoPE).
VISION_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def _is_vision(path: Path, config: dict) -> bool:
    """Vision-language if the config has a vision tower; only the Qwen2-VL family is supported."""
    if "vision_config" not in config:
        return False
    if config.get("model_type") not in VISION_MODEL_TYPES:
        raise ValueError(f"{path}: vision-language model_type {config.get('model_type')!r} is not supported "
                         f"(supported: {', '.join(VISION_MODEL_TYPES)})")
    return True


def load_processing(path) -> tuple[PreTrainedTokenizerFast, VisionProcessor | None, bool]:
    """(tokenizer, image processor or None, is vision-language) of a local model directory, without its weights:
    what a job needs before the (possibly 15 GB) model itself is loaded."""
    path = Path(path)
    raw = _check_dir(path)
    is_vis = _is_vision(path, raw)
    if is_vis and not (path / "preprocessor_config.json").is_file():
        raise FileNotFoundError(f"{path}: vision-language model without preprocessor_config.json")
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # the tokenizers library raises bare Exceptions, naming no file
        raise ValueError(f"{path}: its tokenizer files cannot be loaded ({_first_line(err)})") from None
    if tok.pad_token is None:  # e.g. Llama 3: padding never reaches a loss (masks do), so eos serves
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:  # a base model: the plain format, with the BOS its config names
        bos = raw.get("bos_token_id", (raw.get("text_config") or {}).get("bos_token_id"))
        tok.chat_template = plain_template(tok.convert_ids_to_tokens(bos) if bos is not None else None)
    return tok, (VisionProcessor.from_pretrained(path) if is_vis else None), is_vis


def load_model(path, *, dtype: torch.dtype | str | None = None,
               device: str | torch.device | None = None) -> LoadedModel:
    """Load a local Hugging Face directory (text or vision-language) with its tokenizer and, for vision-language
    models, the torchvision-free image processor. Local files only, safetensors only, no remote code. `dtype`
    None = as saved; `device` None = CUDA when available, else CPU."""
    path = Path(path)
    tok, processor, is_vis = load_processing(path)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    _check_shapes(path, meta_model(path))
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    cls = AutoModelForImageTextToText if is_vis else AutoModelForCausalLM
    try:
        model, info = cls.from_pretrained(path, config=config, local_files_only=True, trust_remote_code=False,
                                          use_safetensors=True, dtype=dtype if dtype is not None else "auto",
                                          attn_implementation=attn_implementation(device), output_loading_info=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: config.json does not match the weights ({_first_line(err)})") from None
    if info["missing_keys"]:
        raise ValueError(f"{path}: the *.safetensors weights lack {len(info['missing_keys'])} tensors that config.json "
                         f"describes (e.g. {sorted(info['missing_keys'])[0]})")
    model.to(device).eval()
    return LoadedModel(model=model, tokenizer=tok, processor=processor, is_vision=is_vis, path=path)
