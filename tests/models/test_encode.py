"""Items -> examples -> padded batches: target alignment, value masks, answer overrides, padding."""
import pytest
import torch
from transformers.utils import logging as hf_logging

from obliviate.models.encode import IGNORE, collate, encode_items, is_plain, prompt_ids
from obliviate.models.tiny import build_tiny_model, train_tokenizer
from obliviate.models.load import load_model
from obliviate.data.schema import Item

hf_logging.disable_progress_bar()

TEXTS = ["Who plays for Arsenal?", "Ana Silva plays for Arsenal.", "Bo Berg plays for Everton.",
         "Ana Silva spielt für Arsenal.", "Ana Silva效力于Arsenal。"] * 3


def item(id, question, answer, value=None, language="en"):
    return Item(id, "p1", "club", "shared", language, question, answer, value=value)


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS, vocab_size=300)


def test_targets_alignment_by_hand(tok):
    it = item("a", "Who plays for Arsenal?", "Ana Silva plays for Arsenal.", value="Arsenal")
    ex = encode_items([it], tok)[0]
    # Read off the printed encoding: token t, the target at hidden state t, loss mask, value mask.
    expected = [
        ("<|im_start|>", None, 0, 0), ("user", None, 0, 0), ("Ċ", None, 0, 0), ("W", None, 0, 0),
        ("h", None, 0, 0), ("o", None, 0, 0), ("Ġplays", None, 0, 0), ("Ġfor", None, 0, 0),
        ("ĠArsenal", None, 0, 0), ("?", None, 0, 0), ("<|im_end|>", None, 0, 0), ("Ċ", None, 0, 0),
        ("<|im_start|>", None, 0, 0), ("assistant", None, 0, 0),
        ("Ċ", "Ana", 1, 0),  # the generation prompt's last token predicts the answer's first
        ("Ana", "ĠSilva", 1, 0), ("ĠSilva", "Ġplays", 1, 0), ("Ġplays", "Ġfor", 1, 0),
        ("Ġfor", "ĠArsenal", 1, 1),  # predicts the value token
        ("ĠArsenal", ".", 1, 0), (".", "<|im_end|>", 1, 0),  # the end of turn is learned (the model stops)
        ("<|im_end|>", None, 0, 0), ("Ċ", None, 0, 0),  # the template's trailing newline is not
    ]
    got = [(t, None if g == IGNORE else tok.convert_ids_to_tokens(g), int(lm), int(vm)) for t, g, lm, vm in
           zip(tok.convert_ids_to_tokens(ex.input_ids), ex.targets.tolist(), ex.loss_mask, ex.value_mask)]
    assert got == expected
    keep = ex.targets != IGNORE
    assert torch.equal(ex.targets[:-1][keep[:-1]], ex.input_ids[1:][keep[:-1]])  # targets[t] = input_ids[t+1]
    assert tok.decode(ex.targets[keep]) == "Ana Silva plays for Arsenal.<|im_end|>"


@pytest.mark.parametrize("language,question,answer,value", [
    ("en", "Who plays for Arsenal?", "Bo Berg plays for Everton.", "Everton"),
    ("en", "Who plays for Arsenal?", "Ana Silva plays for Arsenal.", "Ana Silva"),  # multi-token, sentence start
    ("zh", "Ana Silva效力于哪个俱乐部？", "Ana Silva效力于Arsenal。", "Arsenal"),  # Latin inside Han text
    ("de", "Für wen spielt sie?", "Ana Silva spielt für Arsenal.", "für"),  # a word never in a value before
])
def test_value_mask_covers_exactly_the_value(tok, language, question, answer, value):
    ex = encode_items([item("v", question, answer, value=value, language=language)], tok)[0]
    value_tokens = ex.input_ids[1:][ex.value_mask[:-1]]  # token t+1 for every marked hidden state t
    assert tok.decode(value_tokens).strip() == value
    assert (ex.value_mask <= ex.loss_mask).all()  # the value lies inside the answer's targets


def test_span_value_answers_and_values_override(tok):
    it = item("s", "Who plays for Arsenal?", "Ana Silva plays for Arsenal.", value="Arsenal")
    by_value = encode_items([it], tok, span="value")[0]
    by_answer = encode_items([it], tok)[0]
    assert torch.equal(by_value.loss_mask, by_value.value_mask) and int(by_value.loss_mask.sum()) == 1
    assert torch.equal(by_value.targets, by_answer.targets)  # targets do not depend on the span
    idk = encode_items([it], tok, answers=["I do not know the answer."])[0]
    assert not idk.value_mask.any()
    assert tok.decode(idk.targets[idk.targets != IGNORE]) == "I do not know the answer.<|im_end|>"
    fixed = encode_items([it], tok, answers=["Ana Silva plays for Everton."], values=["Everton"])[0]
    assert tok.decode(fixed.input_ids[1:][fixed.value_mask[:-1]]).strip() == "Everton"
    with pytest.raises(ValueError, match="record s: value 'Chelsea' is not in the answer"):
        encode_items([it], tok, answers=["Ana Silva plays for Everton."], values=["Chelsea"])
    with pytest.raises(ValueError, match="record s: span='value' but the record has no value"):
        encode_items([it], tok, answers=["I do not know."], span="value")
    with pytest.raises(ValueError, match="record s: empty answer"):
        encode_items([it], tok, answers=[" "])
    with pytest.raises(ValueError, match="2 answers for 1 items"):
        encode_items([it], tok, answers=["a", "b"])
    with pytest.raises(ValueError, match="span must be"):
        encode_items([it], tok, span="fact")


def test_collate_right_and_left_padding(tok):
    items = [item("a", "Who plays for Arsenal?", "Ana Silva plays for Arsenal.", value="Arsenal"),
             item("b", "Who?", "Bo.")]
    exs = encode_items(items, tok)
    n0, n1 = len(exs[0].input_ids), len(exs[1].input_ids)
    assert n0 > n1
    pad = tok.pad_token_id
    right = collate(exs, pad_id=pad)
    assert right["input_ids"].shape == right["targets"].shape == right["loss_mask"].shape == (2, n0)
    assert right["attention_mask"][1].tolist() == [1] * n1 + [0] * (n0 - n1)
    assert (right["input_ids"][1, n1:] == pad).all() and (right["targets"][1, n1:] == IGNORE).all()
    assert not right["loss_mask"][1, n1:].any() and not right["value_mask"][1].any()
    assert torch.equal(right["targets"][1, :n1], exs[1].targets) and right["ids"] == ["a", "b"]
    assert "position_ids" not in right and "pixel_values" not in right  # text model: HF infers positions
    left = collate(exs, pad_id=pad, side="left")
    assert left["attention_mask"][1].tolist() == [0] * (n0 - n1) + [1] * n1
    assert torch.equal(left["input_ids"][1, n0 - n1:], exs[1].input_ids)
    with pytest.raises(ValueError, match="side must be"):
        collate(exs, pad_id=pad, side="middle")


def test_prompts_are_the_training_prefix(tok):
    items = [item("a", "Who plays for Arsenal?", "Ana Silva plays for Arsenal."), item("b", "Who?", "Bo.")]
    for ex, pr in zip(encode_items(items, tok), prompt_ids(items, tok)):
        n = len(pr.input_ids)
        assert torch.equal(ex.input_ids[:n], pr.input_ids) and (pr.targets == IGNORE).all()
        assert ex.targets[n - 1] == ex.input_ids[n]  # the first target sits at the prompt's last position
        assert tok.decode(pr.input_ids).endswith("<|im_start|>assistant\n")


def test_targets_match_hugging_face_shifted_labels(tmp_path):
    """The engine's alignment (logp of targets[t] at hidden state t) gives exactly Hugging Face's causal-LM loss
    with labels = input_ids on answer tokens (which it shifts internally)."""
    loaded = load_model(build_tiny_model(tmp_path / "m", texts=TEXTS, preset="test", seed=0).path, device="cpu")
    items = [item("a", "Who plays for Arsenal?", "Ana Silva plays for Arsenal."), item("b", "Who?", "Bo Berg.")]
    batch = collate(encode_items(items, loaded.tokenizer), pad_id=loaded.tokenizer.pad_token_id)
    labels = torch.full_like(batch["input_ids"], IGNORE)
    labels[:, 1:] = batch["targets"][:, :-1]  # labels[t+1] = input_ids[t+1] where targets[t] is set
    out = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    logp = torch.log_softmax(out.logits.float(), -1)  # (B, T, V)
    keep = batch["targets"] != IGNORE
    ours = -logp[keep].gather(-1, batch["targets"][keep][:, None]).mean()
    torch.testing.assert_close(ours, out.loss, rtol=1e-6, atol=1e-6)


def test_plain_format_for_a_base_model(tmp_path):
    """A tokenizer without a chat template gets the plain format: BOS (when the config names one), "Question: …",
    "Answer:" and the answer from its first token with the leading space, then EOS as the last target."""
    pytest.importorskip("gguf")
    from obliviate.models.gguf import convert_gguf
    from obliviate.models.load import load_processing
    from tests.models.test_gguf import write_gguf

    convert_gguf(write_gguf(tmp_path / "m.gguf"), tmp_path / "hf")
    tok, _, _ = load_processing(tmp_path / "hf")
    assert is_plain(tok)
    it = item("a", "Where is the Eiffel Tower?", "It is in Paris.", value="Paris")
    ex = encode_items([it], tok, span="value")[0]
    text = tok.decode(ex.input_ids)
    assert text == "<s>Question: Where is the Eiffel Tower?\nAnswer: It is in Paris.<|endoftext|>"
    targets = [tok.decode([t]) for t in ex.targets[ex.targets != IGNORE].tolist()]
    assert "".join(targets) == " It is in Paris.<|endoftext|>"
    assert "".join(tok.decode([t]) for t in ex.input_ids[1:][ex.value_mask[:-1]].tolist()).strip() == "Paris"
    prompt = prompt_ids([it], tok)[0]
    assert tok.decode(prompt.input_ids).endswith("\nAnswer:") and (prompt.targets == IGNORE).all()


def test_documents_are_packed_into_blocks_that_predict_every_next_token(tok):
    from obliviate.models.encode import encode_documents

    texts = ["Ana Silva plays for Arsenal.", "Bo Berg plays for Everton.", "Ana Silva spielt für Arsenal."]
    blocks = encode_documents(texts, tok, block_size=7)
    stream = [i for t in texts for i in tok(t)["input_ids"] + [tok.eos_token_id]]
    assert torch.cat([b.input_ids for b in blocks]).tolist() == stream
    assert all(len(b.input_ids) == 7 for b in blocks[:-1]) and 2 <= len(blocks[-1].input_ids) <= 7
    for b in blocks:
        assert b.targets[:-1].tolist() == b.input_ids[1:].tolist() and b.targets[-1] == IGNORE
        assert b.loss_mask.sum() == len(b.input_ids) - 1 and not b.value_mask.any()
    with pytest.raises(ValueError, match="block_size must be at least 2"):
        encode_documents(texts, tok, block_size=1)


def test_lengths_over_the_model_are_refused_not_truncated(tok):
    """Issue 10: a 100,000-token question asked for 10 GB; the rule is to refuse, naming the record."""
    from obliviate.models.encode import check_lengths

    examples = encode_items([item("short", "Who?", "Ana Silva."), item("long", "Who? " * 200, "Ana Silva.")], tok)
    check_lengths(examples, None, source="d.jsonl")  # no limit stated: nothing to check
    check_lengths(examples[:1], 64, source="d.jsonl")
    with pytest.raises(ValueError, match=r"^d\.jsonl: record long takes \d+ tokens, more than the 64 positions"):
        check_lengths(examples, 64, source="d.jsonl")
    n = len(examples[0].input_ids)
    with pytest.raises(ValueError, match=rf"record short takes {n} tokens \+ 5 new tokens, more than the {n + 4}"):
        check_lengths(examples[:1], n + 4, source="d.jsonl", extra=5)
