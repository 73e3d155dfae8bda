"""Items -> token tensors: chat-formatted examples with answer/value masks, and padded batches.

One example is one item as a chat: user = the question (after the image, if any), assistant = the answer, both
written by the tokenizer's own chat template, so a released model sees its usual format. A base model without a
chat template gets obliviate's plain format (`PLAIN_TEMPLATE`, installed by `load.load_processing`), the same in
training, scoring and generation:

    <bos>Question: {question}
    Answer: {answer}<eos>

(<bos> when the model's config names one; the answer follows "Answer:" after one space, which belongs to the
answer's first token, so a generation prompt ends with "Answer:" and the model writes " Paris", as it was
trained.) Measured on Gemma 3 270M: this QA form beat a bare cloze sentence in English, German and French
(docs/LOG.md). A plain-format answer is one line: generations are cut at the first newline. Every per-token field of
an example is aligned with the *hidden states*, i.e. already shifted for next-token prediction:

    targets[t]    = input_ids[t+1]  where token t+1 belongs to the answer (its text and the end-of-turn token
                                    the template writes after it, e.g. <|im_end|>), else IGNORE (-100)
    value_mask[t] = token t+1 overlaps the characters of the item's `value` (the fact inside the answer)
    loss_mask[t]  = targets[t] != IGNORE           (span="answer")
                  = value_mask[t]                  (span="value": the loss acts on the fact's tokens only)

so the engine takes log p(targets[t] | h_t) from hidden state t and never shifts. The last position never has a
target. Value tokens are found through the fast tokenizer's character offsets; a token that straddles the value's
edge (e.g. " Paris" with its leading space) counts as a value token.

Padding: `collate` pads on the right for training (real tokens keep positions 0..L-1, which the text models infer
themselves). Generation needs left padding (`side="left"`), so that every row's last real token sits at the end
and new tokens follow it; the Hugging Face text models then derive positions from attention_mask, and the
vision-language batch carries `position_ids` (3, B, T) computed per example (see vision.py) plus
`mm_token_type_ids`, from which `generate` recomputes the same 3-D positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from obliviate.models.vision import IMAGE_PAD, VisionProcessor, expand_image_tokens, load_image, mrope_positions

IGNORE = -100  # the same convention as logprobs.IGNORE and Hugging Face labels
PLAIN_MARK = "obliviate plain format"
# A Jinja chat template for base models; {bos} is filled in at load time (the BOS token, or nothing).
PLAIN_TEMPLATE = (
    "{#- " + PLAIN_MARK + " -#}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{- '{bos}' if loop.first -}}Question: {{ message['content'] }}\nAnswer:"
    "{%- elif message['role'] == 'assistant' -%}{{ ' ' + message['content'] + eos_token }}"
    "{%- endif -%}{%- endfor -%}"
)


def plain_template(bos_token: str | None) -> str:
    """The plain format's chat template, with `bos_token` at the start of every prompt (None: no BOS)."""
    return PLAIN_TEMPLATE.replace("{bos}", bos_token or "")


def is_plain(tokenizer) -> bool:
    """Whether `tokenizer` formats items in obliviate's plain format (a base model)."""
    return PLAIN_MARK in (tokenizer.chat_template or "")


@dataclass(frozen=True, eq=False)
class Example:
    """One encoded item. T = its length; all (T,) fields are target-aligned (see the module docstring)."""

    id: str
    input_ids: torch.Tensor  # (T,) int64
    targets: torch.Tensor  # (T,) int64, IGNORE where no target
    loss_mask: torch.Tensor  # (T,) bool
    value_mask: torch.Tensor  # (T,) bool
    position_ids: torch.Tensor | None = None  # (3, T) M-RoPE positions; vision-language models only
    mm_token_type_ids: torch.Tensor | None = None  # (T,) int32, 1 on image tokens; vision-language models only
    pixel_values: torch.Tensor | None = None  # (P, C·t·p·p) patches of the item's image
    image_grid_thw: torch.Tensor | None = None  # (1, 3)


def _user_turn(question: str, has_image: bool) -> dict:
    if not has_image:
        return {"role": "user", "content": question}
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}


def _image(item, root, processor: VisionProcessor | None, images: bool | None):
    """(pixel_values, grid) of the item's image, or (None, None) when it has none or images are off."""
    use = processor is not None if images is None else images
    if item.image is None or not use:
        return None, None
    if processor is None:
        raise ValueError(f"record {item.id}: images=True needs a vision-language processor")
    path = Path(root) / item.image if root is not None else Path(item.image)
    if not path.is_file():
        raise FileNotFoundError(f"record {item.id}: image {path} not found")
    try:
        image = load_image(path)
    except ValueError as err:
        raise ValueError(f"record {item.id}: {err}") from None
    return processor([image])


def _encode(item, tokenizer, *, root, processor, images, answer: str | None, value: str | None, span: str) -> Example:
    pixel_values, grid = _image(item, root, processor, images)
    if grid is not None and is_plain(tokenizer):
        raise ValueError(f"record {item.id}: an image needs a model with a chat template (the plain format is text)")
    user = _user_turn(item.question, grid is not None)
    prompt = tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
    if grid is not None:
        prompt = expand_image_tokens(prompt, grid, merge_size=processor.merge_size)
    if answer is None:  # a generation prompt: no targets
        text, a0, a1 = prompt, len(prompt), len(prompt)
        start = a0
    elif not answer.strip():
        raise ValueError(f"record {item.id}: empty answer")
    else:
        full = tokenizer.apply_chat_template([user, {"role": "assistant", "content": answer}], tokenize=False)
        if grid is not None:
            full = expand_image_tokens(full, grid, merge_size=processor.merge_size)
        a0 = full.find(answer, len(prompt))
        if not full.startswith(prompt) or a0 < 0 or full[len(prompt):a0].strip():
            raise ValueError(f"record {item.id}: the chat template does not write the answer right after the "
                             "generation prompt; obliviate needs templates where it does")
        text, a1 = full, a0 + len(answer)
        start = len(prompt)  # a space between "Answer:" and the answer belongs to the answer's tokens
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    n = len(ids)
    in_answer = [s < a1 and e > start for s, e in offsets]
    if answer is not None:
        last = max(i for i in range(n) if in_answer[i])
        if last + 1 < n and ids[last + 1] in set(tokenizer.all_special_ids):  # end of turn: learn to stop
            in_answer[last + 1] = True
    in_value = [False] * n
    if value is not None:
        v0 = answer.find(value)  # its first occurrence
        if v0 < 0:
            raise ValueError(f"record {item.id}: value {value!r} is not in the answer {answer!r}")
        v0 += a0
        v1 = v0 + len(value)
        in_value = [s < v1 and e > v0 for s, e in offsets]
    elif span == "value" and answer is not None:
        raise ValueError(f"record {item.id}: span='value' but the record has no value")
    input_ids = torch.tensor(ids, dtype=torch.long)  # (T,)
    answer_next = torch.tensor(in_answer[1:] + [False])  # (T,) token t+1 is an answer token
    targets = torch.full((n,), IGNORE, dtype=torch.long)
    targets[:-1] = torch.where(answer_next[:-1], input_ids[1:], IGNORE)
    value_mask = torch.tensor(in_value[1:] + [False])
    loss_mask = value_mask.clone() if span == "value" else answer_next
    position_ids = token_types = None
    if processor is not None:
        image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        position_ids = mrope_positions(input_ids, grid, image_token_id=image_token_id, merge_size=processor.merge_size)
        token_types = (input_ids == image_token_id).int()
    return Example(id=item.id, input_ids=input_ids, targets=targets, loss_mask=loss_mask, value_mask=value_mask,
                   position_ids=position_ids, mm_token_type_ids=token_types, pixel_values=pixel_values,
                   image_grid_thw=grid)


def encode_items(items: Sequence, tokenizer, *, root=None, processor: VisionProcessor | None = None,
                 answers: Sequence[str] | None = None, values: Sequence[str | None] | None = None,
                 span: str = "answer", images: bool | None = None) -> list[Example]:
    """Encode items for training or scoring.

    root: folder the items' image paths are relative to (the dataset file's folder). processor: the
    vision-language model's (LoadedModel.processor); with it every example carries 3-D `position_ids`, also
    text-only ones. images: None = use items' images when a processor is given; False = text only.
    answers: per-item replacement answers (an "I don't know" or a corrected sentence); values: per-item value
    spans (None entries: none), default the items' own values unless `answers` is given. span: "answer"
    (default) or "value" (loss_mask = the value's tokens; every item needs one).
    """
    if span not in ("answer", "value"):
        raise ValueError(f"span must be 'answer' or 'value', not {span!r}")
    items = list(items)
    for name, seq in (("answers", answers), ("values", values)):
        if seq is not None and len(seq) != len(items):
            raise ValueError(f"{len(seq)} {name} for {len(items)} items")
    out = []
    for i, item in enumerate(items):
        answer = item.answer if answers is None else answers[i]
        value = values[i] if values is not None else (item.value if answers is None else None)
        out.append(_encode(item, tokenizer, root=root, processor=processor, images=images, answer=answer,
                           value=value, span=span))
    return out


def prompt_ids(items: Sequence, tokenizer, *, root=None, processor: VisionProcessor | None = None,
               images: bool | None = None) -> list[Example]:
    """Generation prompts: the same chat formatting up to the assistant's turn (`add_generation_prompt`), no
    targets. Collate them with side="left" for `generate`; `ex.input_ids.tolist()` is vLLM's token prompt."""
    return [_encode(item, tokenizer, root=root, processor=processor, images=images, answer=None, value=None,
                    span="answer") for item in items]


def collate(examples: Sequence[Example], *, pad_id: int, side: str = "right") -> dict:
    """Pad examples into a batch (B = len(examples), T = the longest):

    input_ids (B, T) int64 (pad_id in padding), attention_mask (B, T) int64, targets (B, T) int64 (IGNORE in
    padding), loss_mask (B, T) bool, value_mask (B, T) bool, ids [B]; and when the examples have them
    position_ids (3, B, T) int64 (0 in padding), mm_token_type_ids (B, T) int32 (1 on image tokens),
    pixel_values (ΣP, D) and image_grid_thw (N, 3) of the batch's images in row order.
    side: "right" (default; training and scoring) or "left" (generation).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', not {side!r}")
    if not examples:
        raise ValueError("collate: no examples")
    b, t = len(examples), max(len(ex.input_ids) for ex in examples)
    batch = {
        "input_ids": torch.full((b, t), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((b, t), dtype=torch.long),
        "targets": torch.full((b, t), IGNORE, dtype=torch.long),
        "loss_mask": torch.zeros((b, t), dtype=torch.bool),
        "value_mask": torch.zeros((b, t), dtype=torch.bool),
    }
    vl = [ex.position_ids is not None for ex in examples]
    if any(vl) and not all(vl):
        raise ValueError("collate: examples mix vision-language (position_ids) and text-model encodings")
    if all(vl):
        batch["position_ids"] = torch.zeros((3, b, t), dtype=torch.long)
        batch["mm_token_type_ids"] = torch.zeros((b, t), dtype=torch.int32)
    for i, ex in enumerate(examples):
        n = len(ex.input_ids)
        cols = slice(0, n) if side == "right" else slice(t - n, t)
        batch["input_ids"][i, cols] = ex.input_ids
        batch["attention_mask"][i, cols] = 1
        batch["targets"][i, cols] = ex.targets
        batch["loss_mask"][i, cols] = ex.loss_mask
        batch["value_mask"][i, cols] = ex.value_mask
        if ex.position_ids is not None:
            batch["position_ids"][:, i, cols] = ex.position_ids
            batch["mm_token_type_ids"][i, cols] = ex.mm_token_type_ids
    batch["ids"] = [ex.id for ex in examples]
    with_image = [ex for ex in examples if ex.pixel_values is not None]
    if with_image:
        batch["pixel_values"] = torch.cat([ex.pixel_values for ex in with_image])  # (ΣP, D)
        batch["image_grid_thw"] = torch.cat([ex.image_grid_thw for ex in with_image])  # (N, 3)
    return batch


def encode_documents(texts: Sequence[str], tokenizer, *, block_size: int = 256) -> list[Example]:
    """Plain documents as language-model examples: each text tokenized with the tokenizer's own special tokens
    (BOS where it adds one) and followed by EOS, all concatenated and cut into blocks of `block_size` tokens (the
    last one shorter). Every position predicts the next token: targets[t] = input_ids[t+1]."""
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text)["input_ids"] + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None
                                                  else [])
    out = []
    for b, start in enumerate(range(0, len(stream), block_size)):
        ids = torch.tensor(stream[start:start + block_size], dtype=torch.long)
        if len(ids) < 2:
            continue
        targets = torch.full_like(ids, IGNORE)
        targets[:-1] = ids[1:]
        out.append(Example(id=f"block{b}", input_ids=ids, targets=targets, loss_mask=targets != IGNORE,
                           value_mask=torch.zeros(len(ids), dtype=torch.bool)))
    return out


def check_lengths(examples: Sequence[Example], limit: int | None, *, source: str, extra: int = 0) -> None:
    """Refuse, naming the record, an example that needs more than the model's `limit` positions (with `extra`
    tokens to come, e.g. max_new_tokens). obliviate never truncates: the cut would fall on the answer, the very
    tokens a loss acts on and a probe checks."""
    if limit is None:
        return
    for ex in examples:
        if len(ex.input_ids) + extra > limit:
            more = f" + {extra} new tokens" if extra else ""
            raise ValueError(f"{source}: record {ex.id} takes {len(ex.input_ids)} tokens{more}, more than the {limit} "
                             "positions of the model (max_position_embeddings); shorten or drop it")
