"""Perplexity equals exp of the mean NLL from the model's own logits, and falls on text the model learned."""
import math

import torch

from obliviate.eval.perplexity import perplexity
from obliviate.models.load import load_model
from tests import toy


def test_matches_the_logits_and_prefers_known_text(toy_model):
    loaded = load_model(toy_model, device="cpu")
    tok, model = loaded.tokenizer, loaded.model
    texts = [it.answer for it in toy.text_items(players=[0, 1])][:6]
    ours = perplexity(model, tok, texts, batch_size=4)
    nll, n = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tok(text)["input_ids"] + [tok.eos_token_id]])
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1).gather(1, ids[0, 1:, None])
            nll, n = nll - float(logp.sum()), n + ids.shape[1] - 1
    assert math.isclose(ours, math.exp(nll / n), rel_tol=1e-4)
    scrambled = [" ".join(reversed(t.split())) for t in texts]
    assert perplexity(model, tok, scrambled) > ours
