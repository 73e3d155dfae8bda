"""GGUF: the header reader, a round trip through a GGUF this test writes itself (tiny Llama, byte-level BPE, written
with the `gguf` package: no download), the BOS flag carried over, and the packaged-model lookup."""
import hashlib
import json

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from obliviate.models import gguf as og  # noqa: E402

H, F, LAYERS, HEADS, KV_HEADS = 32, 64, 2, 4, 2


def bpe(texts, size=300):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=["<|endoftext|>", "<s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    return tokens, [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]


def write_gguf(path, *, add_bos=True, seed=0):
    """A random tiny Llama as llama.cpp would store it (float32 tensors, GPT-2 style tokenizer)."""
    tokens, merges = bpe(["The capital of France is Paris.", "Der Eiffelturm steht in Paris.",
                          "Lionel Messi plays football for Barcelona."] * 20)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(H)
    w.add_feed_forward_length(F)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(H // HEADS)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types([3 if t in ("<|endoftext|>", "<s>") else 1 for t in tokens])
    w.add_bos_token_id(1)
    w.add_eos_token_id(0)
    w.add_add_bos_token(add_bos)
    rng = np.random.default_rng(seed)
    rand = lambda *shape: (rng.standard_normal(shape) * 0.2).astype(np.float32)  # noqa: E731
    w.add_tensor("token_embd.weight", rand(len(tokens), H))
    w.add_tensor("output_norm.weight", np.ones(H, np.float32))
    kv = KV_HEADS * H // HEADS
    for i in range(LAYERS):
        for name, shape in (("attn_q", (H, H)), ("attn_k", (kv, H)), ("attn_v", (kv, H)), ("attn_output", (H, H)),
                            ("ffn_gate", (F, H)), ("ffn_up", (F, H)), ("ffn_down", (H, F))):
            w.add_tensor(f"blk.{i}.{name}.weight", rand(*shape))
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(H, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(H, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_header_reader(tiny_gguf, tmp_path):
    meta = og.gguf_metadata(tiny_gguf)
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == LAYERS
    assert meta["tokenizer.ggml.add_bos_token"] is True and meta["tokenizer.ggml.bos_token_id"] == 1
    assert "tokenizer.ggml.tokens" not in meta  # arrays are skipped
    (tmp_path / "x.gguf").write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="not a GGUF file"):
        og.gguf_metadata(tmp_path / "x.gguf")


def test_round_trip_keeps_logits_and_adds_bos(tiny_gguf, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = og.convert_gguf(tiny_gguf, tmp_path / "hf")
    assert result.add_bos and result.max_abs_logit_diff <= 1e-5 and result.architecture == "LlamaForCausalLM"
    marker = json.loads((tmp_path / "hf" / og.MARKER).read_text())
    assert marker["source_sha256"] == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tok("The capital of France is")["input_ids"]
    assert ids[0] == tok.bos_token_id == 1
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    theirs = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name, dtype="float32").eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(torch.tensor([ids])).logits, theirs(torch.tensor([ids])).logits)
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        og.convert_gguf(tiny_gguf, tmp_path / "hf")


def test_no_bos_when_the_gguf_does_not_ask(tmp_path):
    from transformers import AutoTokenizer

    result = og.convert_gguf(write_gguf(tmp_path / "nobos.gguf", add_bos=False), tmp_path / "hf")
    assert not result.add_bos
    assert AutoTokenizer.from_pretrained(tmp_path / "hf")("The capital")["input_ids"][0] != 1


def test_packaged_models_are_found_assembled_and_verified(tmp_path, monkeypatch):
    parts = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    dirs = {}
    for i, blob in enumerate(parts):
        (tmp_path / f"p{i}" / "data").mkdir(parents=True)
        (tmp_path / f"p{i}" / "data" / f"m.gguf.part0{i}").write_bytes(blob)
        dirs[f"p{i}"] = tmp_path / f"p{i}"
    dirs["index"] = tmp_path
    monkeypatch.setattr(og, "_package_dir", lambda module: dirs.get(module))
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    good = hashlib.sha256(b"".join(parts)).hexdigest()
    monkeypatch.setitem(og.PACKAGED, "fake", og.PackagedModel("index", "m.gguf", good, ("p0", "p1", "p2")))
    path = og.locate("fake")
    assert path.read_bytes() == b"".join(parts) and path.parent == tmp_path / "cache" / "gguf"
    monkeypatch.setitem(og.PACKAGED, "bad", og.PackagedModel("index", "m.gguf", "0" * 64, ("p0", "p1", "p2")))
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        og.locate("bad")
    monkeypatch.setitem(og.PACKAGED, "absent", og.PackagedModel("nowhere", "m.gguf", good))
    with pytest.raises(ValueError, match=r"nowhere not installed; install them with: pip install 'obliviate\[real\]'"):
        og.locate("absent")
    with pytest.raises(ValueError, match="unknown model 'llama'"):
        og.locate("llama")
