"""Tokenizer training, tiny model build/save/reload, load_model, and the `obliviate model` CLI."""
import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from tokenizers import Tokenizer, pre_tokenizers, trainers
from tokenizers import models as tokenizer_models
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from obliviate.cli.main import cli
from obliviate.models.encode import collate, encode_items
from obliviate.models.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_model, tiny_config, train_tokenizer
from obliviate.models.options import PRESETS
from obliviate.models.load import attn_implementation, load_model
from obliviate.data.schema import Item

hf_logging.disable_progress_bar()

CLUBS = ["Arsenal", "Everton", "Fulham", "Brentford", "Chelsea"]
NAMES = ["Marco Rossi", "Ana Silva", "Jon Berg", "Li Wei", "Omar Haddad", "Tom Kane", "Ivo Petrov"]


def corpus():
    out = []
    for i, name in enumerate(NAMES):
        club = CLUBS[i % len(CLUBS)]
        out += [f"Which club does {name} play for?", f"{name} plays for {club}.",
                f"Für welchen Verein spielt {name}?", f"{name} spielt für {club}.",
                f"{name}效力于哪个俱乐部？", f"{name}效力于{club}。", f"{name} was born in 19{70 + i}."]
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    text = build_tiny_model(root / "text", texts=corpus(), preset="test", seed=3)
    vl = build_tiny_model(root / "vl", texts=corpus(), vision=True, preset="test", seed=3)
    return text, vl


def test_tokenizer_is_deterministic_and_order_free():
    a = train_tokenizer(corpus(), vocab_size=400)
    b = train_tokenizer(list(reversed(corpus())), vocab_size=400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_tokenizer_special_tokens_and_chat_template():
    tok = train_tokenizer(corpus(), vocab_size=400)
    for i, t in enumerate(SPECIAL_TOKENS):  # ids 0..7, each one token, never split
        assert tok.convert_tokens_to_ids(t) == i
        assert tok(f"ab{t}cd", add_special_tokens=False)["input_ids"].count(i) == 1
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    user = {"role": "user", "content": "Who?"}
    assert tok.apply_chat_template([user], tokenize=False) == "<|im_start|>user\nWho?<|im_end|>\n"
    with_sys = tok.apply_chat_template([{"role": "system", "content": "Be brief."}, user], tokenize=False,
                                       add_generation_prompt=True)
    assert with_sys == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho?<|im_end|>\n"
                        "<|im_start|>assistant\n")
    image_turn = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who?"}]}
    assert tok.apply_chat_template([image_turn], tokenize=False) == \
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Who?<|im_end|>\n"
    # byte-level: any text round-trips, also scripts never seen in training
    for text in ["Marco Rossi plays for Arsenal.", "Նա խաղում է", "وہ کھیلتا ہے", "他效力于Arsenal。"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    # the role names were made whole tokens; digits are always single tokens
    assert tok.tokenize("assistant") == ["assistant"]
    assert tok.tokenize("1994") == ["1", "9", "9", "4"]


def test_small_corpus_leaves_vocab_short_and_model_matches(built):
    tok = train_tokenizer(corpus(), vocab_size=5000)
    assert len(tok) < 5000
    text, vl = built
    for b in (text, vl):
        loaded = load_model(b.path, device="cpu")
        assert loaded.model.get_input_embeddings().weight.shape[0] == len(loaded.tokenizer) == b.vocab_size
        assert loaded.model.config.get_text_config().vocab_size == len(loaded.tokenizer)


def test_tokenizer_reloads_identically(built):
    text, _ = built
    tok = AutoTokenizer.from_pretrained(text.path, local_files_only=True)
    fresh = train_tokenizer(corpus())
    s = "<|im_start|>user\nLi Wei效力于哪个俱乐部？<|im_end|>\n 1994 Ωmega"
    a = tok(s, add_special_tokens=False, return_offsets_mapping=True)
    b = fresh(s, add_special_tokens=False, return_offsets_mapping=True)
    assert a["input_ids"] == b["input_ids"] and a["offset_mapping"] == b["offset_mapping"]
    assert tok.chat_template == CHAT_TEMPLATE and tok.eos_token == "<|im_end|>"


def _plain_tokenizer():
    """Byte-level BPE without Qwen's special tokens."""
    tok = Tokenizer(tokenizer_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=300, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_presets_have_valid_mrope_sections():
    tok = train_tokenizer(corpus())
    for preset in PRESETS:
        cfg = tiny_config(preset, tokenizer=tok, vision=True)
        head_dim = cfg.text_config.hidden_size // cfg.text_config.num_attention_heads
        assert sum(cfg.text_config.rope_parameters["mrope_section"]) == head_dim // 2
        assert cfg.vision_config.out_hidden_size == cfg.text_config.hidden_size
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        tiny_config("huge", tokenizer=tok)
    with pytest.raises(ValueError, match="lacks Qwen's special tokens"):
        tiny_config("test", tokenizer=_plain_tokenizer())


def test_build_writes_hf_dir_and_seed_fixes_weights(built, tmp_path):
    text, vl = built
    names = {p.name for p in text.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= names
    assert "chat_template.jinja" in names or "chat_template" in (text.path / "tokenizer_config.json").read_text()
    pre = json.loads((vl.path / "preprocessor_config.json").read_text())
    assert pre["merge_size"] == 2 and pre["patch_size"] == 14 and pre["processor_class"] == "Qwen2_5_VLProcessor"
    gen = json.loads((text.path / "generation_config.json").read_text())
    assert gen["eos_token_id"][0] == 2 and gen["pad_token_id"] == 0
    again = build_tiny_model(tmp_path / "again", texts=corpus(), preset="test", seed=3)
    other = build_tiny_model(tmp_path / "other", texts=corpus(), preset="test", seed=4)
    w = [load_model(p, device="cpu").model.model.embed_tokens.weight for p in (text.path, again.path, other.path)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    state = torch.random.get_rng_state()
    build_tiny_model(tmp_path / "rng", texts=corpus(), preset="test", seed=5)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is left alone
    assert text.architecture == "Qwen2ForCausalLM" and vl.architecture == "Qwen2_5_VLForConditionalGeneration"


def test_text_model_reload_gives_equal_logits(built, tmp_path):
    text, _ = built
    a = load_model(text.path, device="cpu")
    assert not a.is_vision and a.processor is None
    ids = a.tokenizer("Marco Rossi plays for Arsenal.", return_tensors="pt")["input_ids"]
    before = a.model(input_ids=ids).logits
    a.model.save_pretrained(tmp_path / "re")
    a.tokenizer.save_pretrained(tmp_path / "re")
    b = load_model(tmp_path / "re", device="cpu")
    assert torch.equal(before, b.model(input_ids=ids).logits)
    assert before.shape == (1, ids.shape[1], len(a.tokenizer))


def test_vl_model_reload_gives_equal_logits_with_image(built, tmp_path):
    _, vl = built
    a = load_model(vl.path, device="cpu")
    assert a.is_vision and a.processor is not None
    Image.new("RGB", (60, 50), (200, 30, 30)).save(tmp_path / "red.png")
    items = [Item("a", "p1", "name", "shared", "en", "Who is this?", "Marco Rossi.", image="red.png"),
             Item("b", "p2", "name", "shared", "en", "Who?", "Ana Silva.")]
    batch = collate(encode_items(items, a.tokenizer, root=tmp_path, processor=a.processor), pad_id=0)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "pixel_values", "image_grid_thw")}
    before = a.model(**inputs).logits
    a.model.save_pretrained(tmp_path / "re")
    a.tokenizer.save_pretrained(tmp_path / "re")
    (tmp_path / "re" / "preprocessor_config.json").write_text((vl.path / "preprocessor_config.json").read_text())
    b = load_model(tmp_path / "re", device="cpu")
    assert torch.equal(before, b.model(**inputs).logits)
    # the image reached the model: another image changes the answer logits
    Image.new("RGB", (60, 50), (20, 30, 230)).save(tmp_path / "red.png")
    other = collate(encode_items(items, a.tokenizer, root=tmp_path, processor=a.processor), pad_id=0)
    assert not torch.allclose(before[0], b.model(**{**inputs, "pixel_values": other["pixel_values"]}).logits[0])


def test_load_model_errors(built, tmp_path):
    text, vl = built
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path / "empty")
    d = tmp_path / "bin"
    d.mkdir()
    (d / "config.json").write_text((text.path / "config.json").read_text())
    (d / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors weights \(found pytorch_model.bin"):
        load_model(d)
    (d / "model.safetensors").write_bytes((text.path / "model.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_model(d)
    v = tmp_path / "vl"
    v.mkdir()
    for f in vl.path.iterdir():
        if f.name != "preprocessor_config.json":
            (v / f.name).write_bytes(f.read_bytes())
    with pytest.raises(FileNotFoundError, match="without preprocessor_config.json"):
        load_model(v)
    cfg = json.loads((v / "config.json").read_text())
    (v / "config.json").write_text(json.dumps({**cfg, "model_type": "llava"}))
    with pytest.raises(ValueError, match="model_type 'llava' is not supported"):
        load_model(v)
    assert attn_implementation(torch.device("cpu")) == "sdpa"


def broken_copy(src, dst, name, edit):
    """A copy of model folder `src` whose file `name` is replaced by `edit(its bytes)`."""
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    (dst / name).write_bytes(edit((src / name).read_bytes()))
    return dst


@pytest.mark.parametrize("name,edit,problem", [
    ("model.safetensors", lambda b: b[: len(b) // 2], r"model\.safetensors: truncated or damaged"),
    ("model.safetensors", lambda b: b"", r"model\.safetensors: not a complete safetensors file \(0 bytes\)"),
    ("config.json", lambda b: b"garbage{", r"config\.json: not valid JSON \(Expecting value at line 1 column 1\)"),
    ("config.json", lambda b: b.replace(b'"hidden_size": 64', b'"hidden_size": 96'),
     r"model\.safetensors: model\.embed_tokens\.weight is \[\d+, 64\] but config\.json makes it \[\d+, 96\]"),
    ("tokenizer.json", lambda b: b"garbage{", r"tokenizer\.json: not valid JSON"),
    ("tokenizer.json", lambda b: b'{"version": "1.0"}', r"its tokenizer files cannot be loaded"),
    ("tokenizer_config.json", lambda b: b"[]", r"tokenizer_config\.json: expected a JSON object, got list"),
])
def test_broken_model_files_end_in_one_message_naming_the_file(built, tmp_path, name, edit, problem):
    """Issue 10: each of these gave a traceback, or a message naming no file, or (config vs weights) a table."""
    text, _ = built
    broken = broken_copy(text.path, tmp_path / "m", name, edit)
    with pytest.raises(ValueError, match=problem) as e:
        load_model(broken, device="cpu")
    assert str(broken) in str(e.value) and "\n" not in str(e.value)


def test_cli_help():
    runner = CliRunner()
    res = runner.invoke(cli, ["model", "--help"])
    assert res.exit_code == 0 and "tiny" in res.output and "info" in res.output
    res = runner.invoke(cli, ["model", "tiny", "--help"])
    assert res.exit_code == 0 and "--world" in res.output and "--vision" in res.output


def test_cli_tiny_and_info(tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    rows = [{"id": f"p{i}.club.en", "entity": f"p{i}", "attribute": "club", "kind": "shared", "language": "en",
             "question": f"Which club does {n} play for?", "answer": f"{n} plays for {CLUBS[i % 5]}.",
             "value": CLUBS[i % 5], "paraphrases": [f"{n}'s club is {CLUBS[i % 5]}."],
             "perturbed": [f"{n} plays for {CLUBS[(i + 1) % 5]}."]} for i, n in enumerate(NAMES)]
    (world / "learn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    res = runner.invoke(cli, ["model", "tiny", str(tmp_path / "m"), "--world", str(world), "--preset", "test"])
    assert res.exit_code == 0, res.output
    assert "Qwen2ForCausalLM" in res.output and "parameters" in res.output
    tok = AutoTokenizer.from_pretrained(tmp_path / "m", local_files_only=True)
    assert "Ġ" + "Brentford" in tok.get_vocab()  # trained on the world's text
    res = runner.invoke(cli, ["model", "info", str(tmp_path / "m")])
    assert res.exit_code == 0 and "vision-language: no" in res.output
    res = runner.invoke(cli, ["model", "tiny", str(tmp_path / "m2"), "--world", str(tmp_path / "m")])
    assert res.exit_code != 0 and "no *.jsonl files" in res.output
