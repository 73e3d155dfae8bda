"""Scoring (fused kernel, batched, length-sorted) against a plain transformers forward and log_softmax.

Tolerance: 1e-4 absolute on summed log-probs (fp32; measured differences are ~1e-6) and 1e-5 relative on the
derived scores."""
import math
from dataclasses import replace

import pytest
import torch

from obliviate.eval.backend_hf import HfBackend
from obliviate.eval.rows import ProbeScores
from obliviate.eval.score_metrics import MIN_VAR
from obliviate.eval.scoring import _per_item, logprob_moments, score_items
from obliviate.models.encode import encode_items
from obliviate.models.logprobs import IGNORE

from tests import toy
from tests.eval.lora_setup import make_setup

TOL = 1e-4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp("score"), n_adapters=1, stacked=False)


@pytest.fixture(scope="module")
def items():
    out = []
    for k, it in enumerate(toy.text_items()[:10]):
        other = toy.CLUBS[(k + 1) % 4] if it.attribute == "club" else toy.COUNTRIES[(k + 1) % 4]
        third = toy.CLUBS[(k + 2) % 4] if it.attribute == "club" else toy.COUNTRIES[(k + 2) % 4]
        perturbed = (it.answer.replace(it.value, other), it.answer.replace(it.value, third))[: 1 + k % 2]
        truth = other if k % 3 == 0 else None  # some misinformation items: value is "the fake"
        # some answer paraphrases (TOFU's paraphrased_answer: the truth ratio's base), one or two
        para = (f"It is {it.value}.", f"{it.value}, I believe.")[: k % 3] if k % 2 else ()
        out.append(replace(it, perturbed=perturbed if k != 4 else (), truth=truth, answer_paraphrases=para))
    return out


def reference(model, tok, items):
    """Per item, from full logits: (answer logp, n, value logp, truth-value logp, [paraphrase logp, n], [perturbed
    logp, n], per-token logps, per-token μ, σ²)."""
    out = []
    for it in items:
        seqs = [(it.answer, it.value)] + [(p, None) for p in it.answer_paraphrases + it.perturbed]
        if it.truth:
            seqs.append((it.answer.replace(it.value, it.truth), it.truth))
        exs = encode_items([it] * len(seqs), tok, answers=[s for s, _ in seqs], values=[v for _, v in seqs])
        res = []
        for ex in exs:
            with torch.no_grad():
                logits = model(input_ids=ex.input_ids[None]).logits[0].double()  # (T, V)
            logz = logits.log_softmax(-1)
            keep = ex.targets != IGNORE
            lp = logz[keep].gather(1, ex.targets[keep][:, None])[:, 0]
            vmask = ex.value_mask[keep]
            p = logz[keep].exp()
            mu = (p * logz[keep]).sum(-1)
            var = (p * logz[keep] ** 2).sum(-1) - mu ** 2
            res.append(dict(logp=lp.sum().item(), n=int(keep.sum()), value=lp[vmask].sum().item(), lp=lp, mu=mu,
                            var=var))
        out.append(res)
    return out


@pytest.mark.parametrize("adapter", [None, "a0"])
def test_scores_match_plain_forward(setup, items, adapter):
    model_dir, named = setup
    hf = HfBackend(model_dir, named, device="cpu")
    with hf.activate(adapter) as model:
        got = score_items(model, hf.tokenizer, items, batch_size=3)
        ref = reference(model, hf.tokenizer, items)
    assert all(isinstance(g, ProbeScores) for g in got)
    for it, g, r in zip(items, got, ref):
        ans = r[0]
        assert g.answer_tokens == ans["n"]
        assert g.answer_logp == pytest.approx(ans["logp"], abs=TOL)
        assert g.value_logp == pytest.approx(ans["value"], abs=TOL)
        assert g.prob == pytest.approx(math.exp(ans["logp"] / ans["n"]), rel=1e-4)
        if it.truth:
            assert g.truth_value_logp == pytest.approx(r[-1]["value"], abs=TOL)
        else:
            assert g.truth_value_logp is None
        j = len(it.answer_paraphrases)
        para, pert = r[1:1 + j], r[1 + j:1 + j + len(it.perturbed)]
        base = sum(p["logp"] / p["n"] for p in para) / j if para else ans["logp"] / ans["n"]
        assert g.paraphrase_prob == (pytest.approx(math.exp(base), rel=1e-4) if para else None)
        if pert:
            tr = math.exp(sum(p["logp"] / p["n"] for p in pert) / len(pert) - base)
            assert g.truth_ratio == pytest.approx(tr, rel=1e-4)
        else:
            assert g.truth_ratio is None
        lp, n = ans["lp"], ans["n"]
        assert g.mia_loss == pytest.approx(lp.mean().item(), abs=TOL)
        k = max(1, int(0.2 * n))
        assert g.mia_min_k == pytest.approx(lp.sort().values[:k].mean().item(), abs=TOL)
        z = (lp - ans["mu"]) / ans["var"].clamp_min(MIN_VAR).sqrt()
        assert g.mia_min_k_pp == pytest.approx(z.sort().values[:k].mean().item(), abs=1e-3)
    hf.close()


def test_truth_ratio_is_over_the_paraphrased_answer_hand_values():
    """TOFU's truth ratio: perturbed answers against the paraphrased answer (its base_answer_key), not the answer.
    answer: −1 over 2 tokens (−0.5 a token); paraphrase: −3 over 3 (−1); perturbed: −6 over 3 (−2) and −4 over 1
    (−4) -> R = exp(mean(−2, −4) − (−1)) = e^−2 (over the answer it would be exp(−3 + 0.5) = e^−2.5)."""
    it = replace(toy.text_items()[0], answer_paraphrases=("p",), perturbed=("x", "y"))
    plain = replace(it, answer_paraphrases=())
    mia = dict(value_logp=None, value_n=0, mia_loss=0.0, mia_zlib=0.0, mia_min_k=0.0, mia_min_k_pp=0.0)
    answer = dict(logp=-1.0, n=2, **mia)
    para, x, y = dict(logp=-3.0, n=3), dict(logp=-6.0, n=3), dict(logp=-4.0, n=1)
    got = _per_item([it], [(0, "answer"), (0, "paraphrase"), (0, "perturbed"), (0, "perturbed")], [answer, para, x, y])
    assert got[0].truth_ratio == pytest.approx(math.exp(-2)) and got[0].paraphrase_prob == pytest.approx(math.exp(-1))
    assert got[0].prob == pytest.approx(math.exp(-0.5))
    got = _per_item([plain], [(0, "answer"), (0, "perturbed"), (0, "perturbed")], [answer, x, y])
    assert got[0].truth_ratio == pytest.approx(math.exp(-2.5)) and got[0].paraphrase_prob is None
    two = replace(it, answer_paraphrases=("p", "q"))  # several paraphrases: their mean normalised log-prob
    got = _per_item([two], [(0, "answer"), (0, "paraphrase"), (0, "paraphrase"), (0, "perturbed")],
                    [answer, para, dict(logp=-6.0, n=2), x])
    assert got[0].paraphrase_prob == pytest.approx(math.exp(-2)) and got[0].truth_ratio == pytest.approx(1.0)


def test_adapter_changes_scores_and_batching_does_not(setup, items):
    model_dir, named = setup
    hf = HfBackend(model_dir, named, device="cpu")
    with hf.activate("a0") as model:
        one = score_items(model, hf.tokenizer, items, batch_size=1)
        many = score_items(model, hf.tokenizer, items, batch_size=16)
    with hf.activate(None) as model:
        base = score_items(model, hf.tokenizer, items, batch_size=16)
    for a, b, c in zip(one, many, base):
        assert a.answer_logp == pytest.approx(b.answer_logp, abs=1e-5)
        assert a.mia_zlib == pytest.approx(b.mia_zlib, abs=1e-6)
        assert abs(a.answer_logp - c.answer_logp) > 1e-2
    assert score_items(model, hf.tokenizer, []) == []
    hf.close()


def test_without_mia_the_other_scores_are_unchanged(setup, items):
    model_dir, named = setup
    hf = HfBackend(model_dir, named, device="cpu")
    with hf.activate("a0") as model:
        full = score_items(model, hf.tokenizer, items, batch_size=4)
        lean = score_items(model, hf.tokenizer, items, batch_size=4, mia=False)
    hf.close()
    for a, b in zip(full, lean):
        assert a.mia_min_k_pp is not None and a.mia_loss is not None
        assert (b.mia_loss, b.mia_zlib, b.mia_min_k, b.mia_min_k_pp) == (None, None, None, None)
        assert b.answer_logp == pytest.approx(a.answer_logp, abs=1e-6) and b.truth_ratio == a.truth_ratio


def test_logprob_moments():
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(37, 16, generator=g), torch.randn(101, 16, generator=g)
    mean, var = logprob_moments(h, w, chunk=5)
    logz = (h.double() @ w.double().T).log_softmax(-1)
    p = logz.exp()
    mu = (p * logz).sum(-1)
    torch.testing.assert_close(mean.double(), mu, atol=1e-5, rtol=0)
    torch.testing.assert_close(var.double(), (p * logz ** 2).sum(-1) - mu ** 2, atol=1e-4, rtol=0)
