"""loss_step: the table sends each method to its loss, span_mask picks the tokens, statistics stay tensors, and the
retain term is added with its weight. Checked against the loss functions called by hand on the same log-probs."""
import pytest
import torch

from obliviate.train import losses
from obliviate.train.step import LOSSES, loss_step, span_mask
from obliviate.train.options import METHODS, MethodOptions
from obliviate.train.stream import StepBatch

B, T, V, H = 3, 7, 11, 5


class Toy(torch.nn.Module):
    """A causal-LM stand-in whose hidden states are a fixed function of the input ids (what token_logps needs)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.model = _Body(torch.randn(V, H, generator=g))
        self.lm_head = torch.nn.Linear(H, V, bias=False)
        with torch.no_grad():
            self.lm_head.weight.copy_(torch.randn(V, H, generator=g))


class _Body(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.embed = torch.nn.Parameter(table)

    def forward(self, input_ids, attention_mask=None, use_cache=False, **_):
        return (self.embed[input_ids],)


def batch(seed, *, value=True):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.full((B, T), -100)
    targets[:, 2:-1] = ids[:, 3:]
    loss_mask = targets != -100
    value_mask = torch.zeros(B, T, dtype=torch.bool)
    if value:
        value_mask[:2, 3:5] = True  # rows 0-1 have a value span, row 2 has none
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "targets": targets, "loss_mask": loss_mask,
            "value_mask": value_mask, "ref_logps": torch.randn(B, T, generator=g) * loss_mask}


def test_span_mask_falls_back_to_the_answer_for_rows_without_a_value():
    b = batch(0)
    assert torch.equal(span_mask(b, "answer"), b["loss_mask"])
    v = span_mask(b, "value")
    assert torch.equal(v[:2], b["value_mask"][:2]) and torch.equal(v[2], b["loss_mask"][2])


def test_every_method_has_a_loss_and_nll_trains():
    assert set(METHODS) | {"nll"} == set(LOSSES)


@pytest.mark.parametrize("method", ["ga", "graddiff", "npo", "simnpo"])
def test_forget_losses_equal_the_loss_functions(method):
    from obliviate.models.logprobs import token_logps

    model, b, o = Toy(), batch(1), MethodOptions(span="value", beta=0.3)
    loss, stats = loss_step(model, StepBatch(forget=b), method, o)
    logp, mask = token_logps(model, b), span_mask(b, "value")
    expected = {"ga": lambda: losses.ga_loss(logp, mask), "graddiff": lambda: losses.ga_loss(logp, mask),
                "npo": lambda: losses.npo_loss(logp, b["ref_logps"], mask, beta=0.3),
                "simnpo": lambda: losses.simnpo_loss(logp, mask, beta=0.3)}[method]()
    torch.testing.assert_close(loss, expected)
    assert set(stats) == {"forget_logp", "forget_loss", "loss", "tokens"}
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in stats.values())
    assert stats["tokens"].item() == mask.sum().item()


def test_dpo_family_uses_the_chosen_batch_and_adds_a_weighted_retain_term():
    from obliviate.models.logprobs import token_logps

    model, forget, chosen, retain = Toy(), batch(2), batch(3), batch(4)
    o = MethodOptions(alpha=0.5)
    loss, stats = loss_step(model, StepBatch(forget=forget, chosen=chosen, retain=retain), "idkpo", o)
    dpo = losses.dpo_loss(token_logps(model, chosen), chosen["ref_logps"], chosen["loss_mask"],
                          token_logps(model, forget), forget["ref_logps"], forget["loss_mask"], beta=0.1)
    nll = losses.nll_loss(token_logps(model, retain), retain["loss_mask"])
    torch.testing.assert_close(loss, dpo + 0.5 * nll)
    torch.testing.assert_close(stats["retain_loss"], nll.detach())
    n = forget["loss_mask"].sum() + chosen["loss_mask"].sum() + retain["loss_mask"].sum()
    assert stats["tokens"].item() == n.item()


def test_nll_reports_only_loss_and_tokens_and_its_gradient_raises_the_answers():
    model, b = Toy(), batch(5)
    loss, stats = loss_step(model, StepBatch(forget=b), "nll", MethodOptions())
    assert list(stats) == ["loss", "tokens"]
    loss.backward()
    ga, _ = loss_step(Toy(), StepBatch(forget=b), "ga", MethodOptions())
    assert loss.item() == pytest.approx(-ga.item())  # NLL is minus GA on the same tokens


def test_beta_defaults_per_method():
    assert MethodOptions().beta_for("npo") == 0.1 and MethodOptions().beta_for("simnpo") == 4.5
    assert MethodOptions(beta=2.0).beta_for("npo") == 2.0
