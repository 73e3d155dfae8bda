"""linear_kl against the float64 materialising reference: values, gradients to h and W (never to h_ref or
W_ref), shared and separate reference weights, odd shapes, errors, bounded memory of the torch path.

Tolerances as in test_linear_logprob.py: values |Δ| ≤ 1e-4; gradients max|Δ| ≤ tol · max|ref|, tol the dtype's.
"""
import math

import pytest
import torch

from obliviate.kernels.memory import TensorMemory
from obliviate.kernels import _common, linear_kl, linear_kl_reference
from obliviate.kernels.linear_kl import _kl_stats_kernel

N, H, V = 37, 48, 1001
GRAD_TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
NEEDS_TRITON = pytest.mark.skipif(not torch.cuda.is_available() and not _common.interpreting(_kl_stats_kernel),
                                  reason="Triton needs CUDA or TRITON_INTERPRET=1")
TRITON = pytest.param("triton", marks=NEEDS_TRITON)


def on(backend, *tensors):
    """The tensors on the device `backend` runs on: Triton is compiled on a GPU, interpreted on the CPU."""
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    return [None if t is None else t.to(device) for t in tensors]


def make(n=N, hidden=H, vocab=V, dtype=torch.float32, seed=1, separate=False):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=gen)
    h_ref = h + 0.5 * torch.randn(n, hidden, generator=gen)  # a nearby reference, as after a few unlearning steps
    w = torch.randn(vocab, hidden, generator=gen) * 0.3
    w_ref = w + 0.05 * torch.randn(vocab, hidden, generator=gen) if separate else None
    g = torch.randn(n, generator=gen)
    cast = (lambda x: None if x is None else x.to(dtype))
    return cast(h), cast(h_ref), cast(w), cast(w_ref), g


def reference_grads(h, h_ref, w, w_ref, g):
    h64 = h.detach().double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    kl = linear_kl_reference(h64, h_ref.double(), w64, weight_ref=None if w_ref is None else w_ref.double(),
                             dtype=torch.float64)
    (kl * g.double()).sum().backward()
    return kl, h64.grad, w64.grad


def assert_rel(actual, expected, tol):
    err = (actual.double() - expected).abs().max().item()
    assert err <= tol * expected.abs().max().item() + 1e-12, f"max error {err:.3g} > {tol} x {expected.abs().max():.3g}"


def run(backend, h, h_ref, w, w_ref, g, **kw):
    h, h_ref, w, w_ref, g = on(backend, h, h_ref, w, w_ref, g)
    h = h.clone().requires_grad_()
    h_ref = h_ref.clone().requires_grad_()  # must receive no gradient
    w = w.clone().requires_grad_()
    kl = linear_kl(h, h_ref, w, weight_ref=w_ref, backend=backend, **kw)
    (kl * g).sum().backward()
    assert h_ref.grad is None
    return kl.cpu(), h.grad.cpu(), w.grad.cpu()


def test_reference_matches_a_hand_computed_value():
    w = torch.eye(2)
    h, h_ref = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # p = (1/2, 1/2), q = (3/4, 1/4)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert linear_kl_reference(h, h_ref, w).item() == pytest.approx(expected, abs=1e-6)
    for backend in ("torch", "triton") if _common.interpreting(_kl_stats_kernel) else ("torch",):
        assert linear_kl(h, h_ref, w, backend=backend).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("separate", [False, True], ids=["shared_w", "separate_w_ref"])
@pytest.mark.parametrize("backend,dtype", [
    ("torch", torch.float32), ("torch", torch.float16), ("torch", torch.bfloat16),
    pytest.param("triton", torch.float32, marks=NEEDS_TRITON),
    pytest.param("triton", torch.float16, marks=NEEDS_TRITON)])
def test_values_and_gradients_match_float64(backend, dtype, separate):
    h, h_ref, w, w_ref, g = make(dtype=dtype, separate=separate)
    kl, gh, gw = run(backend, h, h_ref, w, w_ref, g, chunk_size=16)
    ref_kl, ref_gh, ref_gw = reference_grads(h, h_ref, w, w_ref, g)
    assert kl.dtype == torch.float32 and kl.shape == (N,) and (kl > -1e-5).all()
    torch.testing.assert_close(kl.double(), ref_kl, atol=1e-4, rtol=0)
    assert gh.dtype == dtype and gw.dtype == dtype
    assert_rel(gh, ref_gh, GRAD_TOL[dtype])
    assert_rel(gw, ref_gw, GRAD_TOL[dtype])


@pytest.mark.parametrize("backend", ["torch", TRITON])
@pytest.mark.parametrize("n,vocab", [(1, V), (N, 20)])
def test_tiny_shapes(backend, n, vocab):
    h, h_ref, w, w_ref, g = make(n=n, vocab=vocab)
    kl, gh, gw = run(backend, h, h_ref, w, w_ref, g)
    ref_kl, ref_gh, ref_gw = reference_grads(h, h_ref, w, w_ref, g)
    torch.testing.assert_close(kl.double(), ref_kl, atol=1e-4, rtol=0)
    assert_rel(gh, ref_gh, 2e-5)
    assert_rel(gw, ref_gw, 2e-5)


@pytest.mark.parametrize("backend", ["torch", TRITON])
def test_identical_distributions_give_zero_kl_and_zero_gradient(backend):
    h, _, w, _, g = make(n=7)
    kl, gh, gw = run(backend, h, h, w, None, g)
    assert kl.abs().max() < 1e-5
    assert gh.abs().max() < 1e-5 and gw.abs().max() < 1e-5


@pytest.mark.parametrize("backend", ["torch", TRITON])
def test_no_grad_and_frozen_weight_paths_agree(backend):
    h, h_ref, w, _, g = on(backend, *make(n=9))
    with torch.no_grad():
        plain = linear_kl(h, h_ref, w, backend=backend)
    hg = h.clone().requires_grad_()
    kl = linear_kl(hg.view(3, 3, H), h_ref.view(3, 3, H), w, backend=backend)  # leading dims, frozen W
    assert kl.shape == (3, 3)
    (kl.reshape(-1) * g).sum().backward()
    ref_kl, ref_gh, _ = reference_grads(h, h_ref, w, None, g)
    torch.testing.assert_close(plain.double(), ref_kl, atol=1e-4, rtol=0)
    torch.testing.assert_close(kl.reshape(-1).double(), ref_kl, atol=1e-4, rtol=0)
    assert_rel(hg.grad, ref_gh, 2e-5)


def test_bad_inputs_raise_clear_errors():
    h, h_ref, w, _, _ = make(n=4)
    with pytest.raises(ValueError, match="h_ref must match h"):
        linear_kl(h, h_ref[:3], w)
    with pytest.raises(ValueError, match="weight_ref must match weight"):
        linear_kl(h, h_ref, w, weight_ref=w[:10])
    with pytest.raises(TypeError, match="must share"):
        linear_kl(h.double(), h_ref.double(), w.double())


def test_torch_path_memory_is_bounded_by_chunk_not_tokens():
    n, hidden, vocab, chunk = 512, 32, 1001, 64
    h, h_ref, w, _, g = make(n=n, hidden=hidden, vocab=vocab)
    full, block = n * vocab * 4, chunk * vocab * 4

    def step(fn):
        hg, wg = h.clone().requires_grad_(), w.clone().requires_grad_()
        with TensorMemory() as mem:
            (fn(hg, wg) * g).sum().backward()
        return mem

    fused = step(lambda a, b: linear_kl(a, h_ref, b, backend="torch", chunk_size=chunk))
    eager = step(lambda a, b: linear_kl_reference(a, h_ref, b))
    assert eager.largest >= full and eager.peak >= 2 * full
    assert fused.largest <= 1.1 * block, fused.largest
    assert fused.peak <= 3.5 * block, fused.peak  # log p, log q, q (N × V would be 8 blocks)
