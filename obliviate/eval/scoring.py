"""Log-prob scoring of given answers: answer probability, truth-ratio inputs, membership-inference scores.

For one model and a list of items, every item contributes up to 2 + J + K sequences (chat-formatted as in training,
`models.encode.encode_items`): its answer, its J answer paraphrases, its K perturbed (wrong) answers, and, for
misinformation items, the answer with the fake `value` replaced by the `truth`. All of them go through the transformer body in length-sorted
batches; only the answer positions go through the output layer, in `obliviate.kernels.linear_logprob` (the fused
kernel: no tokens × vocabulary logits). Per item, a `rows.ProbeScores` of plain numbers:

    answer_logp, answer_tokens   Σ_t log p(a_t | q, a_<t) over the answer and its end-of-turn token; their count
    prob                         exp(answer_logp / answer_tokens): TOFU's length-normalised P(a|q)^{1/|a|}
    value_logp, value_tokens     the same over the fact's tokens only (`value`; for misinformation: the fake)
    truth_value_logp             over the true fact's tokens in the corrected answer (None unless truth/value)
    paraphrase_prob              exp(mean_j log P(ã_j)/|ã_j|) over the answer paraphrases ã_j (TOFU's
                                 paraphrased_answer: J = 1, P(ã)^{1/|ã|}); None without answer paraphrases
    truth_ratio                  TOFU: mean_k P(â_k)^{1/|â_k|} / P(ã)^{1/|ã|} (`score_metrics.truth_ratio`, geometric
                                 mean over k), ã = the paraphrased answer as in TOFU's code (its base_answer_key),
                                 the item's own answer when it has no `answer_paraphrases` (as TOFU does for its
                                 real_authors / world_facts sets); None if no perturbed answers
    mia_loss, mia_zlib, mia_min_k, mia_min_k_pp     `score_metrics` MIA scores of the answer tokens (higher = member)

Min-K%++ needs, per answer position, the mean μ_t = Σ_v p_tv log p_tv and the variance
σ_t² = Σ_v p_tv (log p_tv)² − μ_t² of the log-prob under the model's own next-token distribution; `logprob_moments`
computes them in token chunks (chunk × V floats at a time), over the answer positions of answer sequences only.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from obliviate.data.schema import Item
from obliviate.eval import score_metrics
from obliviate.eval.options import BATCH_SIZE
from obliviate.eval.rows import ProbeScores
from obliviate.kernels import linear_logprob
from obliviate.models.encode import collate, encode_items
from obliviate.models.logprobs import IGNORE, hidden_states, output_weight

MOMENT_CHUNK = 256  # tokens per chunk in logprob_moments


def logprob_moments(h: torch.Tensor, weight: torch.Tensor, *,
                    chunk: int = MOMENT_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of log p(v) under v ~ p = softmax(W h), per row of h (N, H): two (N,) float32 tensors.
    Memory: chunk × V at a time."""
    mean = torch.empty(h.shape[0], dtype=torch.float32, device=h.device)
    var = torch.empty_like(mean)
    for s in range(0, h.shape[0], chunk):
        logp = torch.nn.functional.linear(h[s:s + chunk], weight).float().log_softmax(-1)  # (C, V)
        p = logp.exp()
        mu = (p * logp).sum(-1)  # (C,)
        mean[s:s + chunk] = mu
        var[s:s + chunk] = ((p * logp * logp).sum(-1) - mu * mu).clamp_min(0)
    return mean, var


def _sequences(items: Sequence[Item]) -> tuple[list[Item], list[str], list[str | None], list[tuple[int, str]]]:
    """Flatten items into sequences to score: (item, answer text, value span, (item index, role))."""
    seq_items, answers, values, roles = [], [], [], []
    for i, it in enumerate(items):
        todo = [(it.answer, it.value, "answer")] + [(p, None, "paraphrase") for p in it.answer_paraphrases]
        todo += [(p, None, "perturbed") for p in it.perturbed]
        if it.truth is not None and it.value is not None:
            todo.append((it.answer.replace(it.value, it.truth), it.truth, "truth"))
        for answer, value, role in todo:
            seq_items.append(it)
            answers.append(answer)
            values.append(value)
            roles.append((i, role))
    return seq_items, answers, values, roles


@torch.no_grad()
def score_items(model: torch.nn.Module, tokenizer, items: Sequence[Item], *, root=None, processor=None,
                batch_size: int = BATCH_SIZE, device: torch.device | str | None = None,
                min_k: float = score_metrics.MIN_K, mia: bool = True) -> list[ProbeScores]:
    """Score `items` under `model` (a causal LM, or a peft model with its adapter set): one `ProbeScores` per item
    (see the module docstring). `root`: the folder the items' images are relative to; `processor`: the VL model's;
    `device`: where the batches go (None: the model's). `mia=False` skips the MIA scores (None), and with them
    Min-K%++'s pass over the whole vocabulary — the costly part with a large one (Gemma 3: 262,144)."""
    items = list(items)
    if not items:
        return []
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    seq_items, answers, values, roles = _sequences(items)
    examples = encode_items(seq_items, tokenizer, root=root, processor=processor, answers=answers, values=values)
    weight = output_weight(model)
    per_seq: list[dict] = [{} for _ in examples]
    order = sorted(range(len(examples)), key=lambda k: len(examples[k].input_ids))
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = collate([examples[k] for k in idx], pad_id=tokenizer.pad_token_id)
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(dtype)
        h = hidden_states(model, batch)  # (B, T, H)
        targets = batch["targets"]  # (B, T)
        keep = targets != IGNORE
        logp = torch.zeros(targets.shape, dtype=torch.float32, device=device)
        logp[keep] = linear_logprob(h[keep], weight, targets[keep]).float()  # (B, T)
        is_answer = torch.tensor([roles[k][1] == "answer" for k in idx], device=device)
        mkeep = keep & is_answer[:, None]
        mean = torch.zeros_like(logp)
        var = torch.ones_like(logp)
        if mia and mkeep.any():
            mean[mkeep], var[mkeep] = logprob_moments(h[mkeep], weight)
        vmask = batch["value_mask"] & keep
        for b, k in enumerate(idx):
            rec = per_seq[k]
            rec["logp"] = float(logp[b][keep[b]].double().sum())
            rec["n"] = int(keep[b].sum())
            rec["value_logp"] = float(logp[b][vmask[b]].double().sum()) if vmask[b].any() else None
            rec["value_n"] = int(vmask[b].sum())
            if mia and roles[k][1] == "answer":
                row, m = logp[b:b + 1].cpu(), keep[b:b + 1].cpu()
                rec["mia_loss"] = float(score_metrics.mia_loss(row, m)[0])
                rec["mia_zlib"] = float(score_metrics.mia_zlib(row, m, [answers[k]])[0])
                rec["mia_min_k"] = float(score_metrics.mia_min_k(row, m, k=min_k)[0])
                rec["mia_min_k_pp"] = float(score_metrics.mia_min_k_plus_plus(
                    row, mean[b:b + 1].cpu(), var[b:b + 1].cpu(), m, k=min_k)[0])
    return _per_item(items, roles, per_seq)


def _per_item(items, roles, per_seq) -> list[ProbeScores]:
    out = [{"truth_value_logp": None, "truth_ratio": None, "paraphrase_prob": None} for _ in items]
    perturbed: list[list[dict]] = [[] for _ in items]
    paraphrased: list[list[dict]] = [[] for _ in items]
    for (i, role), rec in zip(roles, per_seq):
        if role == "answer":
            out[i].update(answer_logp=rec["logp"], answer_tokens=rec["n"], prob=math.exp(rec["logp"] / rec["n"]),
                          value_logp=rec["value_logp"], value_tokens=rec["value_n"],
                          **{k: rec.get(k) for k in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_pp")})
        elif role == "truth":
            out[i]["truth_value_logp"] = rec["value_logp"]
        else:
            (paraphrased if role == "paraphrase" else perturbed)[i].append(rec)
    for i, (para, pert) in enumerate(zip(paraphrased, perturbed)):
        # The base of the ratio as (summed log-prob, tokens); several paraphrases: their mean normalised log-prob.
        base = (out[i]["answer_logp"], out[i]["answer_tokens"])
        if para:
            base = (sum(p["logp"] / p["n"] for p in para) / len(para), 1)
            out[i]["paraphrase_prob"] = math.exp(base[0])
        if pert:
            ratio = score_metrics.truth_ratio([base[0]], [[p["logp"] for p in pert]], [base[1]],
                                              [[p["n"] for p in pert]])
            out[i]["truth_ratio"] = float(ratio[0])
    return [ProbeScores(**scores) for scores in out]
