"""The compiled Triton kernels on a GPU at Qwen2.5 shapes (V = 151936), bf16 and fp32, against the float64
reference on the same device. Skipped without CUDA.

Tolerances: values |Δ| ≤ 2e-3 in bf16 (products are exact in fp32; accumulating H ~ 10³ of them in fp32 and the
bf16-stored exponentials that only the gradient uses), 2e-4 in fp32; gradients max|Δ| ≤ tol · max|ref| with tol
the output dtype's rounding: bf16 1.6e-2, fp32 1e-4.
"""
import pytest
import torch

from obliviate.kernels import linear_kl, linear_kl_reference, linear_logprob, linear_logprob_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
VOCAB = 151936
TOL = {torch.bfloat16: (2e-3, 1.6e-2), torch.float32: (2e-4, 1e-4)}


def inputs(n, hidden, dtype, *, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    h = torch.randn(n, hidden, device="cuda", generator=gen).to(dtype)
    w = (torch.randn(VOCAB, hidden, device="cuda", generator=gen) * hidden ** -0.5 * 3).to(dtype)
    y = torch.randint(0, VOCAB, (n,), device="cuda", generator=gen)
    y[::7] = -100
    g = torch.randn(n, device="cuda", generator=gen)
    return h, w, y, g


def rel_err(actual, expected):
    return ((actual.double() - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("n,hidden", [(2048, 896), (1024, 3584)], ids=["0.5b", "7b"])
def test_logprob_matches_float64(dtype, n, hidden):
    h, w, y, g = inputs(n, hidden, dtype)
    hg, wg = h.clone().requires_grad_(), w.clone().requires_grad_()  # W trained: tied embeddings / full FT
    logp, ent = linear_logprob(hg, wg, y, return_entropy=True)  # auto -> triton on CUDA
    (logp * g).sum().backward()
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    ref, ref_ent = linear_logprob_reference(h64, w64, y, return_entropy=True, dtype=torch.float64)
    (ref * g.double()).sum().backward()
    value_tol, grad_tol = TOL[dtype]
    assert (logp.double() - ref).abs().max().item() <= value_tol
    assert (ent.double() - ref_ent).abs().max().item() <= value_tol
    assert rel_err(hg.grad, h64.grad) <= grad_tol
    assert rel_err(wg.grad, w64.grad) <= grad_tol
    torch.testing.assert_close(logp, linear_logprob(h, w, y, backend="triton"), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_kl_matches_float64(dtype):
    h, w, _, g = inputs(1024, 896, dtype)
    h_ref = (h.float() + 0.3 * torch.randn_like(h, dtype=torch.float32)).to(dtype)
    hg, wg = h.clone().requires_grad_(), w.clone().requires_grad_()
    kl = linear_kl(hg, h_ref, wg)
    (kl * g).sum().backward()
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    ref = linear_kl_reference(h64, h_ref.double(), w64, dtype=torch.float64)
    (ref * g.double()).sum().backward()
    value_tol, grad_tol = TOL[dtype]
    assert (kl.double() - ref).abs().max().item() <= value_tol
    assert rel_err(hg.grad, h64.grad) <= grad_tol
    assert rel_err(wg.grad, w64.grad) <= grad_tol


def test_extra_memory_stays_under_one_gigabyte_at_the_7b_shape():
    """The design target: fwd+bwd at N=8192, H=3584, V=151936 in bf16 with frozen W needs ≤ 1 GB beyond its inputs."""
    h, w, y, g = inputs(8192, 3584, torch.bfloat16)
    h.requires_grad_()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    linear_logprob(h, w, y).backward(g)
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - base <= 1 << 30
