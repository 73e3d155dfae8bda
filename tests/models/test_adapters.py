"""Adapter stacks: the stack file names base and parents, a foreign base is refused, merging a parent equals peft's
own merge, and a fresh LoRA trains only the adapter of the decoder layers."""
import json

import pytest
import torch
from peft import PeftModel

from obliviate.models import adapters
from obliviate.models.load import load_model
from obliviate.models.tiny import build_tiny_model
from tests import toy


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("m") / "m", texts=toy.corpus(), preset="test", seed=2).path


def save_random_adapter(base, out, seed):
    model = adapters.add_trainable_lora(load_model(base, device="cpu").model, adapters.LoraOptions(r=4, alpha=8))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed))
    model.save_pretrained(out)
    return model


def test_only_the_decoder_adapter_trains(base):
    model = adapters.add_trainable_lora(load_model(base, device="cpu").model, adapters.LoraOptions(r=4, alpha=8))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".layers." in n for n in trainable)
    with pytest.raises(ValueError, match="do not exist"):
        adapters.add_trainable_lora(load_model(base, device="cpu").model, adapters.LoraOptions(targets=("nope",)))


def test_stack_file_round_trip_and_foreign_base(base, tmp_path):
    save_random_adapter(base, tmp_path / "a", 0)
    stack = adapters.read_stack(base, tmp_path / "a")  # no stack file: sits directly on base
    assert stack.parents == (str((tmp_path / "a").resolve()),)
    save_random_adapter(base, tmp_path / "b", 1)
    adapters.write_stack(tmp_path / "b", stack)
    assert adapters.read_stack(base, tmp_path / "b").parents == (*stack.parents, str((tmp_path / "b").resolve()))
    meta = json.loads((tmp_path / "b" / adapters.STACK_FILE).read_text())
    assert meta == {"base": str(base.resolve()), "parents": list(stack.parents)}
    with pytest.raises(ValueError, match="adapter was trained on"):
        adapters.read_stack(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="not a peft adapter folder"):
        adapters.read_stack(base, tmp_path)


def test_merge_parents_equals_peft_merge(base, tmp_path):
    save_random_adapter(base, tmp_path / "a", 3)
    ids = torch.tensor([[3, 5, 7, 9]])
    merged = adapters.merge_parents(load_model(base, device="cpu").model, (str(tmp_path / "a"),))
    assert not hasattr(merged, "peft_config")
    reference = PeftModel.from_pretrained(load_model(base, device="cpu").model, tmp_path / "a")
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, reference(ids).logits, atol=1e-5, rtol=0)
        assert not torch.allclose(merged(ids).logits, load_model(base, device="cpu").model(ids).logits, atol=1e-4)


@pytest.mark.parametrize("edit,problem", [
    (lambda a: (a / adapters.STACK_FILE).write_text("{}"), r"obliviate_adapter\.json: expected \{\"base\""),
    (lambda a: (a / "adapter_config.json").write_text("garbage{"), r"adapter_config\.json: not valid JSON"),
    (lambda a: (a / "adapter_model.safetensors").write_bytes((a / "adapter_model.safetensors").read_bytes()[:3000]),
     r"adapter_model\.safetensors: (truncated or damaged|not a complete safetensors file)"),
])
def test_broken_adapter_files_are_named(base, tmp_path, edit, problem):
    """Issue 10: `obliviate_adapter.json` = {} gave a KeyError traceback, a garbage adapter_config.json a message
    without the file, a truncated adapter a SafetensorError traceback."""
    save_random_adapter(base, tmp_path / "a", 0)
    adapters.write_stack(tmp_path / "a", adapters.read_stack(base, None))
    edit(tmp_path / "a")
    with pytest.raises(ValueError, match=problem):
        adapters.read_stack(base, tmp_path / "a")


def test_an_adapter_of_another_shape_is_refused_in_one_line(base, tmp_path):
    save_random_adapter(base, tmp_path / "a", 0)
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))  # weights have r = 4
    with pytest.raises(ValueError, match=r"adapter does not match the model: size mismatch for .*lora_A") as e:
        adapters.merge_parents(load_model(base, device="cpu").model, (str(tmp_path / "a"),))
    assert "\n" not in str(e.value)
