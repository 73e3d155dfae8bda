"""token_logps and token_kl on a tiny Qwen2 (plain and inside a peft wrapper) equal what the materialised logits
give, and are zero where there is no target."""
import pytest
import torch

from obliviate.models import adapters
from obliviate.models.encode import IGNORE, collate, encode_items
from obliviate.models.load import load_model
from obliviate.models.logprobs import hidden_states, output_weight, token_kl, token_logps
from obliviate.models.tiny import build_tiny_model
from tests import toy


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("m") / "m", texts=toy.corpus(), preset="test", seed=3).path
    loaded = load_model(path, device="cpu", dtype=torch.float32)
    batch = collate(encode_items(toy.text_items(players=[0, 1]), loaded.tokenizer), pad_id=loaded.tokenizer.pad_token_id)
    return loaded, batch


def logits_logps(model, batch):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    logp = torch.log_softmax(logits, -1)
    return logp.gather(-1, batch["targets"].clamp(min=0)[..., None])[..., 0] * (batch["targets"] != IGNORE)


def test_token_logps_equal_the_logits_path(setup):
    loaded, batch = setup
    ours = token_logps(loaded.model, batch)
    torch.testing.assert_close(ours, logits_logps(loaded.model, batch), atol=2e-5, rtol=0)
    assert (ours[batch["targets"] == IGNORE] == 0).all() and (ours[batch["targets"] != IGNORE] < 0).all()


def test_inside_a_peft_wrapper_and_kl_to_itself(setup):
    loaded, batch = setup
    peft = adapters.add_trainable_lora(loaded.model, adapters.LoraOptions(r=4, alpha=8))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    mask = batch["loss_mask"]
    with torch.no_grad(), peft.disable_adapter():
        ref_h = hidden_states(peft, batch)
        assert token_kl(peft, batch, ref_h, mask).abs().max() < 1e-5  # adapter off: KL to itself is 0
        off = logits_logps(peft, batch)
    with torch.no_grad():
        on_logits = peft(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        kl = token_kl(peft, batch, ref_h, mask)
    torch.testing.assert_close(token_logps(peft, batch).detach(), logits_logps(peft, batch).detach(), atol=2e-5, rtol=0)
    p_ref = torch.softmax(ref_h.float() @ output_weight(peft).float().T, -1)
    expected = (p_ref * (p_ref.log() - torch.log_softmax(on_logits, -1))).sum(-1) * mask
    torch.testing.assert_close(kl, expected, atol=2e-5, rtol=0)
    assert (kl[mask] > 0).all() and not torch.equal(off, logits_logps(peft, batch))
