r"""Fused linear → per-token KL(p_ref ‖ p_θ) between a policy and a frozen reference, without N × V storage.

Math. Policy hidden states h (N, H), reference hidden states h_ref (N, H) (the same base with the adapter off,
or a separate reference model), output matrices W (V, H) and W_ref (default: W, shared under LoRA); z = W h, z^r = W_ref h_ref,
p = softmax(z), q = softmax(z^r), lse_p, lse_q their log-normalisers.

    KL_t = Σ_v q_tv (log q_tv − log p_tv)
         = Σ_v q_tv (z^r_tv − lse_q,t − z_tv + lse_p,t)
         = Σ_v q_tv (z^r_tv − z_tv) − lse_q,t + lse_p,t                    (Σ_v q_tv = 1)

The reference side is a constant target (a frozen model): only p depends on the trained parameters.
∂KL_t/∂z_tv = −q_tv + ∂lse_p,t/∂z_tv = p_tv − q_tv, hence

    ∂KL_t/∂h_t = Σ_v (p_tv − q_tv) W_v                     (N, H), computed in the forward pass;
    dL/dh_t    = g_t · ∂KL_t/∂h_t                          for any upstream g_t = ∂L/∂KL_t;
    dL/dW      = Σ_t g_t (p_t − q_t) h_tᵀ = Gᵀ h,  G_tv = g_t (p_tv − q_tv)      (only when W requires grad;
                 recomputed in backward from the saved lse_p, lse_q: z and z^r again, 4·N·H·V, then Gᵀ h, 2·N·H·V).

No gradient flows to h_ref or W_ref, also when W_ref is W (tied or shared weights): the reference distribution
is a target, as in the KL-on-retain terms of OFFSIDE / open-unlearning.

Forward cost: z and z^r (4·N·H·V FLOPs) and Σ (p − q) W (2·N·H·V) = 6·N·H·V. Schedule as in `_common`: per token
chunk, `_kl_stats_kernel` computes both logit tiles (one W slab serves both when W_ref is W), per-tile maxima and
sums for p and q and a_j = Σ_{v∈j} e^{z^r − m^q_j} (z^r − z), so Σ_v q (z^r − z) = Σ_j c^q_j a_j after the
combine; then one split-K GEMM over A = e^p c^p − e^q c^q.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._common import (CHUNK_BYTES, TORCH_CHUNK_BYTES, check_inputs, combine_tiles, dot_precision, prob_matmul,
                      resolve_backend, tile_config, tl, token_chunk, triton)
from .linear_logprob import _logits_f32, _times_weight_f32, _torch_slab, _vocab_slab

# ---------------------------------------------------------------------------------------------------------------
# Reference (materialising)
# ---------------------------------------------------------------------------------------------------------------


def linear_kl_reference(h, h_ref, weight, *, weight_ref=None, dtype=None):
    """KL(softmax(W_ref h_ref) ‖ softmax(W h)) per token, materialising both N × V logits; the reference side is
    detached. dtype as in `linear_logprob_reference` (None = inputs' dtype, softmax in float32)."""
    weight_ref = weight if weight_ref is None else weight_ref
    soft = torch.float64 if dtype == torch.float64 else torch.float32
    if dtype is not None:
        h, h_ref, weight, weight_ref = h.to(dtype), h_ref.to(dtype), weight.to(dtype), weight_ref.to(dtype)
    with torch.no_grad():
        log_q = F.linear(h_ref, weight_ref).to(soft).log_softmax(dim=-1)  # (..., V)
    log_p = F.linear(h, weight).to(soft).log_softmax(dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=-1)


# ---------------------------------------------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------------------------------------------

if triton is not None:

    @triton.jit
    def _pair_logit_tiles(h_ptr, r_ptr, w_ptr, wr_ptr, stride_h, stride_r, stride_w, stride_wr, rows, cols, M, V, K,
                          SAME_W: tl.constexpr, PREC: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        """(z, z^r) tiles (BLOCK_M, BLOCK_V) fp32; with SAME_W one W slab load feeds both dots."""
        acc_p = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.float32)
        acc_q = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.float32)
        row_ok = rows[:, None] < M
        col_ok = cols[None, :] < V
        rows64 = rows.to(tl.int64)[:, None]  # int64 offsets: V × H passes 2^31 for large vocabularies
        cols64 = cols.to(tl.int64)[None, :]
        for k0 in range(0, K, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            x_ok = row_ok & (ks[None, :] < K)
            w_ok = col_ok & (ks[:, None] < K)
            x = tl.load(h_ptr + rows64 * stride_h + ks[None, :], mask=x_ok, other=0.0)
            xr = tl.load(r_ptr + rows64 * stride_r + ks[None, :], mask=x_ok, other=0.0)
            w = tl.load(w_ptr + cols64 * stride_w + ks[:, None], mask=w_ok, other=0.0)
            acc_p += tl.dot(x, w, input_precision=PREC)
            if SAME_W:
                acc_q += tl.dot(xr, w, input_precision=PREC)
            else:
                wr = tl.load(wr_ptr + cols64 * stride_wr + ks[:, None], mask=w_ok, other=0.0)
                acc_q += tl.dot(xr, wr, input_precision=PREC)
        return acc_p, acc_q

    @triton.jit
    def _kl_stats_kernel(h_ptr, r_ptr, w_ptr, wr_ptr, ep_ptr, eq_ptr, mp_ptr, sp_ptr, mq_ptr, sq_ptr, a_ptr,
                         M, V, K, T, stride_h, stride_r, stride_w, stride_wr, stride_e,
                         SAME_W: tl.constexpr, STORE_E: tl.constexpr, PREC: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        """Per (token block, vocabulary tile): maxima and sums of e^{z − m} and e^{z^r − m^r}, a = Σ e^{z^r − m^r}
        (z^r − z), and (for the gradient) both exponential tiles. Token blocks vary fastest (W from L2)."""
        pid = tl.program_id(0)
        num_m = tl.cdiv(M, BLOCK_M)
        tile = pid // num_m
        rows = (pid % num_m) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tile * BLOCK_V + tl.arange(0, BLOCK_V)
        row_ok = rows < M
        col_ok = cols < V
        z, zr = _pair_logit_tiles(h_ptr, r_ptr, w_ptr, wr_ptr, stride_h, stride_r, stride_w, stride_wr, rows, cols,
                                  M, V, K, SAME_W, PREC, BLOCK_M, BLOCK_V, BLOCK_K)
        diff = tl.where(col_ok[None, :], zr - z, 0.0)
        z = tl.where(col_ok[None, :], z, float("-inf"))
        zr = tl.where(col_ok[None, :], zr, float("-inf"))
        m_p = tl.max(z, axis=1)
        m_q = tl.max(zr, axis=1)
        e_p = tl.exp(z - m_p[:, None])
        e_q = tl.exp(zr - m_q[:, None])
        at = rows * T + tile
        tl.store(mp_ptr + at, m_p, mask=row_ok)
        tl.store(sp_ptr + at, tl.sum(e_p, axis=1), mask=row_ok)
        tl.store(mq_ptr + at, m_q, mask=row_ok)
        tl.store(sq_ptr + at, tl.sum(e_q, axis=1), mask=row_ok)
        tl.store(a_ptr + at, tl.sum(e_q * diff, axis=1), mask=row_ok)
        if STORE_E:
            off = rows.to(tl.int64)[:, None] * stride_e + cols[None, :]
            ok = row_ok[:, None] & col_ok[None, :]
            tl.store(ep_ptr + off, e_p.to(ep_ptr.dtype.element_ty), mask=ok)
            tl.store(eq_ptr + off, e_q.to(eq_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def _kl_wgrad_kernel(h_ptr, r_ptr, w_ptr, wr_ptr, lse_p_ptr, lse_q_ptr, g_ptr, out_ptr,
                         M, V, K, stride_h, stride_r, stride_w, stride_wr, stride_o,
                         SAME_W: tl.constexpr, PREC: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        """Backward recompute for one vocabulary slab: G[t, v] = g_t (p_tv − q_tv), in the weight dtype."""
        pid = tl.program_id(0)
        num_m = tl.cdiv(M, BLOCK_M)
        rows = (pid % num_m) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = (pid // num_m) * BLOCK_V + tl.arange(0, BLOCK_V)
        row_ok = rows < M
        z, zr = _pair_logit_tiles(h_ptr, r_ptr, w_ptr, wr_ptr, stride_h, stride_r, stride_w, stride_wr, rows, cols,
                                  M, V, K, SAME_W, PREC, BLOCK_M, BLOCK_V, BLOCK_K)
        lse_p = tl.load(lse_p_ptr + rows, mask=row_ok, other=0.0)
        lse_q = tl.load(lse_q_ptr + rows, mask=row_ok, other=0.0)
        g = tl.load(g_ptr + rows, mask=row_ok, other=0.0)
        grad = g[:, None] * (tl.exp(z - lse_p[:, None]) - tl.exp(zr - lse_q[:, None]))
        out = out_ptr + rows.to(tl.int64)[:, None] * stride_o + cols[None, :]
        tl.store(out, grad.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & (cols[None, :] < V))


# ---------------------------------------------------------------------------------------------------------------
# Launchers. Each forward returns kl (N,) fp32, lse_p, lse_q (N,) fp32, dKL/dh (N, H) or None.
# ---------------------------------------------------------------------------------------------------------------


def _forward_triton(h, h_ref, weight, weight_ref, *, need_dh, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    st, mm = tile_config(h, pair=True)
    n_tiles = triton.cdiv(vocab, st.block_n)
    per_token = 2 * vocab * h.element_size() if need_dh else 20 * n_tiles
    chunk = token_chunk(n, per_token, st.block_m, budget=CHUNK_BYTES, chunk_size=chunk_size)
    f32 = dict(device=h.device, dtype=torch.float32)
    m_p, s_p, m_q, s_q, a = (torch.empty(chunk, n_tiles, **f32) for _ in range(5))  # (C, T) each
    e_p = torch.empty(chunk, vocab, device=h.device, dtype=h.dtype) if need_dh else m_p  # (C, V)
    e_q = torch.empty(chunk, vocab, device=h.device, dtype=h.dtype) if need_dh else m_p
    kl, lse_p, lse_q = (torch.empty(n, **f32) for _ in range(3))
    dh = torch.empty(n, hidden, device=h.device, dtype=h.dtype) if need_dh else None
    for c0 in range(0, n, chunk):
        rows = min(chunk, n - c0)
        _kl_stats_kernel[(triton.cdiv(rows, st.block_m) * n_tiles,)](
            h[c0:], h_ref[c0:], weight, weight_ref, e_p, e_q, m_p, s_p, m_q, s_q, a,
            rows, vocab, hidden, n_tiles, h.stride(0), h_ref.stride(0), weight.stride(0), weight_ref.stride(0), vocab,
            SAME_W=weight_ref is weight, STORE_E=need_dh, PREC=dot_precision(h.dtype),
            BLOCK_M=st.block_m, BLOCK_V=st.block_n, BLOCK_K=st.block_k,
            num_warps=st.num_warps, num_stages=st.num_stages,
        )
        lp, cp = combine_tiles(m_p[:rows], s_p[:rows])
        lq, cq = combine_tiles(m_q[:rows], s_q[:rows])
        lse_p[c0:c0 + rows], lse_q[c0:c0 + rows] = lp, lq
        kl[c0:c0 + rows] = (cq * a[:rows]).sum(dim=1) - lq + lp
        if need_dh:
            grad = prob_matmul(e_p[:rows], cp, weight, e2=e_q[:rows], c2=cq, tile_v=st.block_n, tiles=mm)
            dh[c0:c0 + rows] = grad.to(h.dtype)  # Σ_v (p − q) W_v
    return kl, lse_p, lse_q, dh


def _wgrad_triton(h, h_ref, weight, weight_ref, lse_p, lse_q, g, *, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    st, _ = tile_config(h, pair=True)
    slab = _vocab_slab(n, vocab, h.element_size(), st.block_n, chunk_size=chunk_size, budget=CHUNK_BYTES)
    grad_g = torch.empty(n, slab, device=h.device, dtype=weight.dtype)  # (N, Vc)
    grad_w = torch.empty_like(weight)
    for v0 in range(0, vocab, slab):
        cols = min(slab, vocab - v0)
        _kl_wgrad_kernel[(triton.cdiv(n, st.block_m) * triton.cdiv(cols, st.block_n),)](
            h, h_ref, weight[v0:], weight_ref[v0:], lse_p, lse_q, g, grad_g,
            n, cols, hidden, h.stride(0), h_ref.stride(0), weight.stride(0), weight_ref.stride(0), grad_g.stride(0),
            SAME_W=weight_ref is weight, PREC=dot_precision(h.dtype),
            BLOCK_M=st.block_m, BLOCK_V=st.block_n, BLOCK_K=st.block_k,
            num_warps=st.num_warps, num_stages=st.num_stages,
        )
        torch.mm(grad_g[:, :cols].t(), h, out=grad_w[v0:v0 + cols])
    return grad_w


def _forward_torch(h, h_ref, weight, weight_ref, *, need_dh, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    chunk = token_chunk(n, 3 * 4 * vocab, 1, budget=TORCH_CHUNK_BYTES, chunk_size=chunk_size)
    slab = _torch_slab(weight)
    f32 = dict(device=h.device, dtype=torch.float32)
    kl, lse_p, lse_q = (torch.empty(n, **f32) for _ in range(3))
    dh = torch.empty(n, hidden, device=h.device, dtype=h.dtype) if need_dh else None
    for c0 in range(0, n, chunk):
        sl = slice(c0, c0 + chunk)
        z = _logits_f32(h[sl].float(), weight, slab)  # (C, V) fp32
        log_p = z.log_softmax(dim=1)
        lse_p[sl] = z[:, 0] - log_p[:, 0]
        del z
        z = _logits_f32(h_ref[sl].float(), weight_ref, slab)
        log_q = z.log_softmax(dim=1)
        lse_q[sl] = z[:, 0] - log_q[:, 0]
        del z
        q = log_q.exp()
        log_q -= log_p  # log q − log p
        kl[sl] = torch.bmm(q[:, None, :], log_q[:, :, None])[:, 0, 0]
        del log_q
        if need_dh:
            log_p.exp_().sub_(q)  # now p − q, in place
            dh[sl] = _times_weight_f32(log_p, weight, slab).to(h.dtype)
        del log_p, q  # before the next chunk's logits
    return kl, lse_p, lse_q, dh


def _wgrad_torch(h, h_ref, weight, weight_ref, lse_p, lse_q, g, *, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    chunk = token_chunk(n, 3 * 4 * vocab, 1, budget=TORCH_CHUNK_BYTES, chunk_size=chunk_size)
    slab = _vocab_slab(n, vocab, 4, 1, chunk_size=chunk, budget=TORCH_CHUNK_BYTES)
    h32, r32 = h.float(), h_ref.float()
    grad_w = torch.empty_like(weight)
    for v0 in range(0, vocab, slab):
        v1 = min(v0 + slab, vocab)
        grad = (h32 @ weight[v0:v1].float().t()).sub_(lse_p[:, None]).exp_()  # (N, Vc) p
        grad -= (r32 @ weight_ref[v0:v1].float().t()).sub_(lse_q[:, None]).exp_()  # p − q
        grad *= g[:, None]
        grad_w[v0:v1] = (grad.t() @ h32).to(weight.dtype)
        del grad
    return grad_w


# ---------------------------------------------------------------------------------------------------------------
# autograd
# ---------------------------------------------------------------------------------------------------------------


class LinearKLFunction(torch.autograd.Function):
    """(h, h_ref (N, H), weight, weight_ref (V, H)) -> KL(p_ref ‖ p_θ) (N,) fp32; gradients for h and weight."""

    @staticmethod
    def forward(ctx, h, h_ref, weight, weight_ref, backend, chunk_size):
        run = _forward_triton if backend == "triton" else _forward_torch
        kl, lse_p, lse_q, dh = run(h, h_ref, weight, weight_ref, need_dh=ctx.needs_input_grad[0],
                                   chunk_size=chunk_size)
        keep_w = ctx.needs_input_grad[2]
        saved = (h, h_ref, weight, weight_ref, lse_p, lse_q) if keep_w else (None,) * 6
        ctx.save_for_backward(dh, *saved)
        ctx.backend, ctx.chunk_size, ctx.same_w = backend, chunk_size, weight_ref is weight
        return kl

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_kl):
        dh, h, h_ref, weight, weight_ref, lse_p, lse_q = ctx.saved_tensors
        g = grad_kl.float()  # (N,)
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = (dh * g[:, None]).to(dh.dtype)
        if ctx.needs_input_grad[2]:
            weight_ref = weight if ctx.same_w else weight_ref  # keeps the one-slab SAME_W path after unpacking
            wgrad = _wgrad_triton if ctx.backend == "triton" else _wgrad_torch
            grad_w = wgrad(h, h_ref, weight, weight_ref, lse_p, lse_q, g, chunk_size=ctx.chunk_size)
        return grad_h, None, grad_w, None, None, None


def linear_kl(h, h_ref, weight, *, weight_ref=None, backend="auto", chunk_size=None):
    """Per-token KL(softmax(W_ref h_ref) ‖ softmax(W h)), fused with the output layer.

    h, h_ref (..., H) float32/float16/bfloat16; weight (V, H) same dtype; weight_ref (V, H) the reference model's
    output matrix (None = weight, as under LoRA). Returns (...) float32. Gradients flow to h and, when it requires
    grad, to weight (recomputed in backward); h_ref and weight_ref are constants. backend and chunk_size as in
    `linear_logprob` (the extra memory is about 2 × chunk × V elements).
    """
    check_inputs("linear_kl", h, weight)
    if h_ref.shape != h.shape or h_ref.dtype != h.dtype or h_ref.device != h.device:
        raise ValueError(f"linear_kl: h_ref must match h, got {h_ref.dtype} {tuple(h_ref.shape)} on {h_ref.device} "
                         f"vs {h.dtype} {tuple(h.shape)} on {h.device}")
    if weight_ref is not None and (weight_ref.shape != weight.shape or weight_ref.dtype != weight.dtype
                                   or weight_ref.device != weight.device):
        raise ValueError(f"linear_kl: weight_ref must match weight, got {weight_ref.dtype} "
                         f"{tuple(weight_ref.shape)} vs {weight.dtype} {tuple(weight.shape)}")
    flat_h = h.reshape(-1, h.shape[-1])
    flat_r = h_ref.detach().reshape(-1, h.shape[-1])
    flat_h, flat_r = (x if x.stride(-1) == 1 else x.contiguous() for x in (flat_h, flat_r))
    if weight.stride(-1) != 1:
        weight = weight.contiguous()
    ref_w = weight if weight_ref is None or weight_ref is weight else weight_ref.detach()
    if ref_w is not weight and ref_w.stride(-1) != 1:
        ref_w = ref_w.contiguous()
    kernel = _kl_stats_kernel if triton is not None else None
    backend = resolve_backend(backend, flat_h, kernel)
    kl = LinearKLFunction.apply(flat_h, flat_r, weight, ref_w, backend, chunk_size)
    return kl.view(h.shape[:-1])
