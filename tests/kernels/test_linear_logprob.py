"""linear_logprob against the float64 materialising reference: values, entropy, gradients (h and W) under
arbitrary upstream gradients, odd shapes, ignored targets, errors, and bounded memory of the torch path.

Triton kernels run here in the interpreter (tests/conftest.py sets TRITON_INTERPRET=1 without nvidia-smi) in fp32
and fp16 only: the interpreter's bf16 tl.dot is wrong (bf16 Triton is tested on GPU, test_gpu.py).
Tolerances: values |Δ| ≤ 1e-4 (every path accumulates in fp32); gradients max|Δ| ≤ tol · max|ref| with tol the
input dtype's rounding (the gradient is returned in that dtype): fp32 2e-5, fp16 2e-3, bf16 1.6e-2.
"""
import math

import pytest
import torch

from obliviate.kernels.memory import TensorMemory
from obliviate.kernels import _common, linear_logprob, linear_logprob_reference
from obliviate.kernels.linear_logprob import _logprob_stats_kernel

N, H, V = 37, 48, 1001  # odd on purpose: no dimension is a multiple of any tile
GRAD_TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
NEEDS_TRITON = pytest.mark.skipif(not torch.cuda.is_available() and not _common.interpreting(_logprob_stats_kernel),
                                  reason="Triton needs CUDA or TRITON_INTERPRET=1")
TRITON = pytest.param("triton", marks=NEEDS_TRITON)


def on(backend, *tensors):
    """The tensors on the device `backend` runs on: Triton is compiled on a GPU, interpreted on the CPU."""
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    return [t.to(device) for t in tensors]


def make(n=N, hidden=H, vocab=V, dtype=torch.float32, seed=0, ignored=(3, 20)):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=gen).to(dtype)
    w = (torch.randn(vocab, hidden, generator=gen) * 0.3).to(dtype)
    y = torch.randint(0, vocab, (n,), generator=gen)
    y[0] = vocab - 1  # the last (partial) vocabulary tile
    for i in ignored:
        if i < n:
            y[i] = -100
    g = torch.randn(n, generator=gen)  # arbitrary per-token upstream gradient (NPO/DPO weights, signs, zeros)
    return h, w, y, g


def reference_grads(h, w, y, g):
    h64 = h.detach().double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    logp, ent = linear_logprob_reference(h64, w64, y, return_entropy=True, dtype=torch.float64)
    (logp * g.double()).sum().backward()
    return logp, ent, h64.grad, w64.grad


def assert_rel(actual, expected, tol):
    err = (actual.double() - expected).abs().max().item()
    assert err <= tol * expected.abs().max().item() + 1e-12, f"max error {err:.3g} > {tol} x {expected.abs().max():.3g}"


def run(backend, h, w, y, g, **kw):
    h, w, y, g = on(backend, h, w, y, g)
    h = h.clone().requires_grad_()
    w = w.clone().requires_grad_()
    logp, ent = linear_logprob(h, w, y, return_entropy=True, backend=backend, **kw)
    (logp * g).sum().backward()
    return logp.cpu(), ent.cpu(), h.grad.cpu(), w.grad.cpu()


def test_reference_matches_a_hand_computed_value():
    h = torch.tensor([[1.0, 2.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]])  # z = [1, 0, 0]
    lse = math.log(math.e + 2.0)
    logp, ent = linear_logprob_reference(h, w, torch.tensor([0]), return_entropy=True)
    assert logp.item() == pytest.approx(1.0 - lse, abs=1e-6)
    p = torch.tensor([math.e, 1.0, 1.0]) / (math.e + 2.0)
    assert ent.item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-6)
    for backend in ("torch", "triton") if _common.interpreting(_logprob_stats_kernel) else ("torch",):
        assert linear_logprob(h, w, torch.tensor([0]), backend=backend).item() == pytest.approx(1.0 - lse, abs=1e-6)


@pytest.mark.parametrize("backend,dtype", [
    ("torch", torch.float32), ("torch", torch.float16), ("torch", torch.bfloat16),
    pytest.param("triton", torch.float32, marks=NEEDS_TRITON),
    pytest.param("triton", torch.float16, marks=NEEDS_TRITON)])
def test_values_and_gradients_match_float64(backend, dtype):
    h, w, y, g = make(dtype=dtype)
    logp, ent, gh, gw = run(backend, h, w, y, g, chunk_size=16)  # several token chunks
    ref_logp, ref_ent, ref_gh, ref_gw = reference_grads(h, w, y, g)
    assert logp.dtype == torch.float32 and logp.shape == (N,)
    torch.testing.assert_close(logp.double(), ref_logp, atol=1e-4, rtol=0)
    torch.testing.assert_close(ent.double(), ref_ent, atol=1e-4, rtol=0)
    assert gh.dtype == dtype and gw.dtype == dtype
    assert_rel(gh, ref_gh, GRAD_TOL[dtype])
    assert_rel(gw, ref_gw, GRAD_TOL[dtype])
    ignored = y == -100
    assert (logp[ignored] == 0).all() and (ent[ignored] == 0).all() and (gh[ignored] == 0).all()


@pytest.mark.parametrize("backend", ["torch", TRITON])
@pytest.mark.parametrize("n,vocab", [(1, V), (N, 20)])  # one token; V smaller than one vocabulary tile
def test_tiny_shapes(backend, n, vocab):
    h, w, y, g = make(n=n, vocab=vocab, ignored=())
    logp, ent, gh, gw = run(backend, h, w, y, g)
    ref_logp, ref_ent, ref_gh, ref_gw = reference_grads(h, w, y, g)
    torch.testing.assert_close(logp.double(), ref_logp, atol=1e-4, rtol=0)
    torch.testing.assert_close(ent.double(), ref_ent, atol=1e-4, rtol=0)
    assert_rel(gh, ref_gh, 2e-5)
    assert_rel(gw, ref_gw, 2e-5)


@pytest.mark.parametrize("backend", ["torch", TRITON])
def test_all_targets_ignored_give_zeros_and_zero_gradients(backend):
    h, w, y, g = make(n=5)
    logp, ent, gh, gw = run(backend, h, w, torch.full_like(y, -7), g, ignore_index=-7)
    assert not logp.any() and not ent.any() and not gh.any() and not gw.any()


@pytest.mark.parametrize("backend", ["torch", TRITON])
def test_frozen_and_no_grad_paths_agree(backend):
    h, w, y, g = on(backend, *make(n=9))
    with torch.no_grad():
        plain = linear_logprob(h, w, y, backend=backend)
    hg = h.clone().requires_grad_()
    logp = linear_logprob(hg, w, y, backend=backend)  # frozen W (LoRA): gradient to h only
    (logp * g).sum().backward()
    wg = w.clone().requires_grad_()
    only_w = linear_logprob(h, wg, y, backend=backend)  # h constant, W trained
    (only_w * g).sum().backward()
    ref_logp, _, ref_gh, ref_gw = reference_grads(h, w, y, g)
    for out in (plain, logp, only_w):
        torch.testing.assert_close(out.double(), ref_logp, atol=1e-4, rtol=0)
    assert_rel(hg.grad, ref_gh, 2e-5)
    assert_rel(wg.grad, ref_gw, 2e-5)


def test_leading_dimensions_and_int32_targets():
    h, w, y, g = make(n=12, ignored=(5,))
    out = linear_logprob(h.view(3, 4, H), w, y.view(3, 4).int())
    assert out.shape == (3, 4)
    torch.testing.assert_close(out.reshape(-1), linear_logprob(h, w, y))


def test_auto_backend_is_torch_on_cpu_and_matches_triton():
    h, w, y, _ = make()
    auto = linear_logprob(h, w, y)
    torch.testing.assert_close(auto, linear_logprob(h, w, y, backend="torch"), atol=0, rtol=0)
    if _common.interpreting(_logprob_stats_kernel):
        torch.testing.assert_close(auto, linear_logprob(h, w, y, backend="triton"), atol=1e-5, rtol=0)


def test_bad_inputs_raise_clear_errors(monkeypatch):
    h, w, y, _ = make(n=4, ignored=())
    with pytest.raises(ValueError, match="target 1001 at flat position 2"):
        linear_logprob(h, w, torch.tensor([0, 1, V, 2]))
    with pytest.raises(TypeError, match="must share"):
        linear_logprob(h, w.half(), y)
    with pytest.raises(ValueError, match="disagree"):
        linear_logprob(h, w[:, :10], y)
    with pytest.raises(ValueError, match="targets must be integer"):
        linear_logprob(h, w, y[:3])
    with pytest.raises(ValueError, match="backend must be one of"):
        linear_logprob(h, w, y, backend="cuda")
    monkeypatch.setattr(_common, "interpreting", lambda kernel: False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        linear_logprob(h, w, y, backend="triton")


def test_torch_path_memory_is_bounded_by_chunk_not_tokens():
    """Forward + backward (h and W gradients) of the torch path hold about two chunk × V blocks, never N × V (= 8
    blocks here); the eager reference holds several N × V blocks (which shows the tracker sees them)."""
    n, hidden, vocab, chunk = 512, 32, 1001, 64
    h, w, y, g = make(n=n, hidden=hidden, vocab=vocab)
    full, block = n * vocab * 4, chunk * vocab * 4  # fp32 N × V: 2 MB; chunk × V: 256 KB

    def step(fn):
        hg, wg = h.clone().requires_grad_(), w.clone().requires_grad_()
        with TensorMemory() as mem:
            (fn(hg, wg) * g).sum().backward()
        return mem

    fused = step(lambda a, b: linear_logprob(a, b, y, backend="torch", chunk_size=chunk))
    eager = step(lambda a, b: linear_logprob_reference(a, b, y))
    assert eager.largest >= full and eager.peak >= 2 * full
    assert fused.largest <= 1.1 * block, fused.largest
    assert fused.peak <= 2.5 * block, fused.peak  # logits, then log p / p in place, + N × H terms
