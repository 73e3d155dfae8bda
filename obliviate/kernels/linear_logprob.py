r"""Fused linear → per-token log-probability (and entropy), without storing the N × V logits.

Math. Hidden states h (N, H) after the final norm, output matrix W (V, H), targets y (N,); z_t = W h_t (V,),
p_t = softmax(z_t), lse_t = log Σ_v exp(z_tv).

    logp_t = z_t[y_t] − lse_t                      (the quantity every unlearning loss is built from)
    H_t    = −Σ_v p_tv log p_tv = lse_t − Σ_v p_tv z_tv                     (entropy, a diagnostic)

Gradient w.r.t. h. ∂lse_t/∂z_tv = p_tv and ∂z_tv/∂h_t = W_v, so

    ∂logp_t/∂h_t = W[y_t] − Σ_v p_tv W_v    (N, H), independent of the loss.

It is computed in the forward pass, chunk by chunk; for *any* loss L(logp) (GA, NPO, DPO, SimNPO: an arbitrary
upstream g_t = ∂L/∂logp_t per token) the backward is only dL/dh_t = g_t · ∂logp_t/∂h_t. Forward cost: z = h Wᵀ
(2·N·H·V FLOPs) and Σ_v p W (2·N·H·V): the 4·N·H·V floor.

Gradient w.r.t. W (full fine-tuning, tied embeddings). ∂logp_t/∂W_v = (δ_{v,y_t} − p_tv) h_t, so

    dL/dW = Σ_t g_t (e_{y_t} − p_t) h_tᵀ = Gᵀ h,   G_tv = g_t (δ_{v,y_t} − p_tv)   (V, H)

sums over tokens *with* g, which exists only in backward: it is recomputed there, vocabulary chunk by chunk (z
again from the saved lse: 2·N·H·V, then Gᵀ h: 2·N·H·V), i.e. +4·N·H·V FLOPs and only when W requires grad.

Entropy is returned without a gradient (marked non-differentiable): its gradient −Σ_v p_v (z_v − E_p z) W_v would
need a third accumulator; no loss here uses it.

Ignored targets (y_t = ignore_index) give logp 0, entropy 0 and zero gradients.

Schedule (Triton, see `_common`): per chunk of C tokens, `_logprob_stats_kernel` (tl.dot tiles of z, per-tile
max / Σ e^{z−m} / Σ e^{z−m} z, the target logit, e = e^{z−m} stored in the input dtype), a C × T combine, then the
split-K probability GEMM; extra memory C × V + C × T, not N × V. The torch path (`backend="torch"`, the CPU path)
runs the same math on token chunks in float32 with peak extra memory ~2 × chunk × V × 4 bytes.

References: Liger-Kernel fused linear cross-entropy (Hsu et al., arXiv 2410.10989) for chunking the output layer;
Milakov & Gimelshein, "Online normalizer calculation for softmax" (arXiv 1805.02867) for combining partial maxima.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._common import (CHUNK_BYTES, TORCH_CHUNK_BYTES, check_inputs, combine_tiles, dot_precision, logit_tile,
                      prob_matmul, resolve_backend, tile_config, tl, token_chunk, triton)

# ---------------------------------------------------------------------------------------------------------------
# Reference (materialising): the one the tests and the benchmarks compare against.
# ---------------------------------------------------------------------------------------------------------------


def linear_logprob_reference(h, weight, targets, *, ignore_index=-100, return_entropy=False, dtype=None):
    """Materialises z = h Wᵀ (N × V). dtype: the matmul dtype (None = the inputs' own, as eager models do); the
    softmax runs in float64 when dtype is float64, else float32. Differentiable by autograd."""
    if dtype is not None:
        h, weight = h.to(dtype), weight.to(dtype)
    z = F.linear(h, weight)  # (..., V)
    logz = z.to(torch.float64 if dtype == torch.float64 else torch.float32).log_softmax(dim=-1)
    valid = targets != ignore_index
    picked = logz.gather(-1, torch.where(valid, targets, 0).unsqueeze(-1)).squeeze(-1)  # (...,)
    logp = torch.where(valid, picked, torch.zeros_like(picked))
    if not return_entropy:
        return logp
    ent = -(logz.exp() * logz).sum(dim=-1)
    return logp, torch.where(valid, ent, torch.zeros_like(ent))


# ---------------------------------------------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------------------------------------------

if triton is not None:

    @triton.jit
    def _logprob_stats_kernel(h_ptr, w_ptr, y_ptr, e_ptr, m_ptr, s_ptr, ez_ptr, zy_ptr,
                              M, V, K, T, stride_h, stride_w, stride_e,
                              STORE_E: tl.constexpr, ENTROPY: tl.constexpr, PREC: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        """One (BLOCK_M tokens × BLOCK_V vocabulary) tile of z; writes the tile's partials and, for the gradient,
        e = exp(z − m_tile). Token blocks vary fastest: the programs sharing one W tile run together, so W is read
        from HBM once per chunk and the chunk of h stays in L2."""
        pid = tl.program_id(0)
        num_m = tl.cdiv(M, BLOCK_M)
        tile = pid // num_m
        rows = (pid % num_m) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,)
        cols = tile * BLOCK_V + tl.arange(0, BLOCK_V)  # (BV,)
        row_ok = rows < M
        col_ok = cols < V
        z = logit_tile(h_ptr, stride_h, w_ptr, stride_w, rows, cols, M, V, K, BLOCK_M, BLOCK_V, BLOCK_K, PREC)
        z = tl.where(col_ok[None, :], z, float("-inf"))  # (BM, BV) fp32
        m = tl.max(z, axis=1)  # every tile holds at least one real column
        e = tl.exp(z - m[:, None])  # 0 in padded columns
        tl.store(m_ptr + rows * T + tile, m, mask=row_ok)
        tl.store(s_ptr + rows * T + tile, tl.sum(e, axis=1), mask=row_ok)
        if ENTROPY:
            tl.store(ez_ptr + rows * T + tile, tl.sum(e * tl.where(col_ok[None, :], z, 0.0), axis=1), mask=row_ok)
        y = tl.load(y_ptr + rows, mask=row_ok, other=-1)
        zy = tl.sum(tl.where(cols[None, :] == y[:, None], z, 0.0), axis=1)
        here = (y >= tile * BLOCK_V) & (y < tile * BLOCK_V + BLOCK_V)
        tl.store(zy_ptr + rows, zy, mask=row_ok & here)
        if STORE_E:
            e_out = e_ptr + rows.to(tl.int64)[:, None] * stride_e + cols[None, :]
            tl.store(e_out, e.to(e_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])

    @triton.jit
    def _logprob_wgrad_kernel(h_ptr, w_ptr, y_ptr, lse_ptr, g_ptr, out_ptr,
                              M, V, K, v_off, stride_h, stride_w, stride_o,
                              PREC: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        """Backward recompute: G[t, v] = g_t (δ_{v,y_t} − exp(z_tv − lse_t)) for the vocabulary slab starting at
        v_off (w_ptr points at its first row), written in the weight dtype for the Gᵀ h GEMM."""
        pid = tl.program_id(0)
        num_m = tl.cdiv(M, BLOCK_M)
        rows = (pid % num_m) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = (pid // num_m) * BLOCK_V + tl.arange(0, BLOCK_V)
        row_ok = rows < M
        col_ok = cols < V
        z = logit_tile(h_ptr, stride_h, w_ptr, stride_w, rows, cols, M, V, K, BLOCK_M, BLOCK_V, BLOCK_K, PREC)
        lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
        g = tl.load(g_ptr + rows, mask=row_ok, other=0.0)  # 0 for ignored tokens
        y = tl.load(y_ptr + rows, mask=row_ok, other=-1)
        hit = (cols[None, :] + v_off) == y[:, None]
        grad = g[:, None] * (hit.to(tl.float32) - tl.exp(z - lse[:, None]))
        out = out_ptr + rows.to(tl.int64)[:, None] * stride_o + cols[None, :]
        tl.store(out, grad.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


# ---------------------------------------------------------------------------------------------------------------
# Launchers: Triton and the chunked torch path. Each forward returns logp, entropy, lse (N,) fp32, dlogp/dh (N, H).
# ---------------------------------------------------------------------------------------------------------------


def _forward_triton(h, weight, targets, valid, *, need_dh, entropy, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    st, mm = tile_config(h)
    n_tiles = triton.cdiv(vocab, st.block_n)
    per_token = vocab * h.element_size() if need_dh else 12 * n_tiles
    chunk = token_chunk(n, per_token, st.block_m, budget=CHUNK_BYTES, chunk_size=chunk_size)
    f32 = dict(device=h.device, dtype=torch.float32)
    tile_max, tile_sum = torch.empty(chunk, n_tiles, **f32), torch.empty(chunk, n_tiles, **f32)  # (C, T)
    tile_ez = torch.empty(chunk, n_tiles, **f32) if entropy else tile_max
    e = torch.empty(chunk, vocab, device=h.device, dtype=h.dtype) if need_dh else tile_max  # (C, V)
    z_target = torch.empty(chunk, **f32)
    logp, lse = torch.empty(n, **f32), torch.empty(n, **f32)
    ent = torch.zeros(n, **f32) if entropy else None
    dh = torch.empty(n, hidden, device=h.device, dtype=h.dtype) if need_dh else None
    safe = torch.where(valid, targets, 0)
    for c0 in range(0, n, chunk):
        rows = min(chunk, n - c0)
        z_target.zero_()
        _logprob_stats_kernel[(triton.cdiv(rows, st.block_m) * n_tiles,)](
            h[c0:], weight, targets[c0:], e, tile_max, tile_sum, tile_ez, z_target,
            rows, vocab, hidden, n_tiles, h.stride(0), weight.stride(0), vocab,
            STORE_E=need_dh, ENTROPY=entropy, PREC=dot_precision(h.dtype),
            BLOCK_M=st.block_m, BLOCK_V=st.block_n, BLOCK_K=st.block_k,
            num_warps=st.num_warps, num_stages=st.num_stages,
        )
        lse_c, scale = combine_tiles(tile_max[:rows], tile_sum[:rows])  # (C,), (C, T)
        lse[c0:c0 + rows] = lse_c
        logp[c0:c0 + rows] = z_target[:rows] - lse_c
        if entropy:
            ent[c0:c0 + rows] = lse_c - (scale * tile_ez[:rows]).sum(dim=1)
        if need_dh:
            expect_w = prob_matmul(e[:rows], scale, weight, tile_v=st.block_n, tiles=mm)  # Σ_v p_tv W_v (C, H)
            dh[c0:c0 + rows] = (weight[safe[c0:c0 + rows]].float() - expect_w).to(h.dtype)
    return logp, ent, lse, dh


def _wgrad_triton(h, weight, targets, lse, g, *, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    st, _ = tile_config(h)
    slab = _vocab_slab(n, vocab, h.element_size(), st.block_n, chunk_size=chunk_size, budget=CHUNK_BYTES)
    grad_g = torch.empty(n, slab, device=h.device, dtype=weight.dtype)  # (N, Vc)
    grad_w = torch.empty_like(weight)
    for v0 in range(0, vocab, slab):
        cols = min(slab, vocab - v0)
        _logprob_wgrad_kernel[(triton.cdiv(n, st.block_m) * triton.cdiv(cols, st.block_n),)](
            h, weight[v0:], targets, lse, g, grad_g,
            n, cols, hidden, v0, h.stride(0), weight.stride(0), grad_g.stride(0),
            PREC=dot_precision(h.dtype), BLOCK_M=st.block_m, BLOCK_V=st.block_n, BLOCK_K=st.block_k,
            num_warps=st.num_warps, num_stages=st.num_stages,
        )
        torch.mm(grad_g[:, :cols].t(), h, out=grad_w[v0:v0 + cols])  # Gᵀ h (Vc, H)
    return grad_w


def _vocab_slab(n, vocab, elem_bytes, multiple, *, chunk_size, budget):
    """Vocabulary rows per backward slab: N × slab elements stay within the forward's chunk × V (or the budget)."""
    cap = chunk_size * vocab // max(n, 1) if chunk_size is not None else budget // max(1, n * elem_bytes)
    cap = min(cap, vocab)
    return max(multiple, cap // multiple * multiple)


def _logits_f32(h32, weight, slab):
    """z = h Wᵀ in float32 (C, V); a low-precision W is upcast `slab` rows at a time, never whole."""
    if weight.dtype == torch.float32:
        return h32 @ weight.t()
    z = torch.empty(h32.shape[0], weight.shape[0], device=h32.device, dtype=torch.float32)
    for v0 in range(0, weight.shape[0], slab):
        z[:, v0:v0 + slab] = h32 @ weight[v0:v0 + slab].float().t()
    return z


def _times_weight_f32(a, weight, slab):
    """a W in float32 (C, H) for a (C, V) float32."""
    if weight.dtype == torch.float32:
        return a @ weight
    out = torch.zeros(a.shape[0], weight.shape[1], device=a.device, dtype=torch.float32)
    for v0 in range(0, weight.shape[0], slab):
        out += a[:, v0:v0 + slab] @ weight[v0:v0 + slab].float()
    return out


def _torch_slab(weight):
    return max(1, TORCH_CHUNK_BYTES // (4 * weight.shape[1]))


def _forward_torch(h, weight, targets, valid, *, need_dh, entropy, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    chunk = token_chunk(n, 2 * 4 * vocab, 1, budget=TORCH_CHUNK_BYTES, chunk_size=chunk_size)
    slab = _torch_slab(weight)
    f32 = dict(device=h.device, dtype=torch.float32)
    logp, lse = torch.empty(n, **f32), torch.empty(n, **f32)
    ent = torch.empty(n, **f32) if entropy else None
    dh = torch.empty(n, hidden, device=h.device, dtype=h.dtype) if need_dh else None
    safe = torch.where(valid, targets, 0)
    for c0 in range(0, n, chunk):
        sl = slice(c0, c0 + chunk)
        z = _logits_f32(h[sl].float(), weight, slab)  # (C, V) fp32
        logz = z.log_softmax(dim=1)  # log p
        lse[sl] = z[:, 0] - logz[:, 0]
        del z
        logp[sl] = logz.gather(1, safe[sl, None])[:, 0]
        if entropy:
            ent[sl] = -torch.bmm(logz.exp()[:, None, :], logz[:, :, None])[:, 0, 0]
        if need_dh:
            p = logz.exp_()  # in place: log p is no longer needed
            p[torch.arange(p.shape[0], device=h.device), safe[sl]] -= 1.0  # p − e_y
            dh[sl] = (-_times_weight_f32(p, weight, slab)).to(h.dtype)
            del p
        del logz  # before the next chunk's logits
    return logp, ent, lse, dh


def _wgrad_torch(h, weight, targets, lse, g, *, chunk_size):
    n, hidden = h.shape
    vocab = weight.shape[0]
    chunk = token_chunk(n, 2 * 4 * vocab, 1, budget=TORCH_CHUNK_BYTES, chunk_size=chunk_size)
    slab = _vocab_slab(n, vocab, 4, 1, chunk_size=chunk, budget=TORCH_CHUNK_BYTES)
    h32 = h.float()
    grad_w = torch.empty_like(weight)
    for v0 in range(0, vocab, slab):
        v1 = min(v0 + slab, vocab)
        grad = (h32 @ weight[v0:v1].float().t()).sub_(lse[:, None]).exp_().mul_(-g[:, None])  # (N, Vc) −g p
        hit = (targets >= v0) & (targets < v1)
        grad.index_put_((hit.nonzero()[:, 0], targets[hit] - v0), g[hit], accumulate=True)  # + g e_y
        grad_w[v0:v1] = (grad.t() @ h32).to(weight.dtype)
        del grad
    return grad_w


# ---------------------------------------------------------------------------------------------------------------
# autograd
# ---------------------------------------------------------------------------------------------------------------


class LinearLogprobFunction(torch.autograd.Function):
    """(h (N, H), weight (V, H), targets (N,)) -> logp (N,) fp32 [, entropy (N,) fp32, no gradient]."""

    @staticmethod
    def forward(ctx, h, weight, targets, ignore_index, return_entropy, backend, chunk_size):
        valid = targets != ignore_index
        run = _forward_triton if backend == "triton" else _forward_torch
        logp, ent, lse, dh = run(h, weight, targets, valid, need_dh=ctx.needs_input_grad[0], entropy=return_entropy,
                                 chunk_size=chunk_size)
        logp.masked_fill_(~valid, 0.0)
        if dh is not None:
            dh.masked_fill_(~valid[:, None], 0.0)
        keep_w = ctx.needs_input_grad[1]
        ctx.save_for_backward(dh, h if keep_w else None, weight if keep_w else None, targets, valid, lse)
        ctx.backend, ctx.chunk_size = backend, chunk_size
        if not return_entropy:
            return logp
        ent.masked_fill_(~valid, 0.0)
        ctx.mark_non_differentiable(ent)
        return logp, ent

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logp, *_):
        dh, h, weight, targets, valid, lse = ctx.saved_tensors
        g = torch.where(valid, grad_logp.float(), 0.0)  # (N,) upstream, 0 on ignored tokens
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = (dh * g[:, None]).to(dh.dtype)
        if ctx.needs_input_grad[1]:
            wgrad = _wgrad_triton if ctx.backend == "triton" else _wgrad_torch
            grad_w = wgrad(h, weight, targets, lse, g, chunk_size=ctx.chunk_size)
        return grad_h, grad_w, None, None, None, None, None


def linear_logprob(h, weight, targets, *, ignore_index=-100, return_entropy=False, backend="auto", chunk_size=None):
    """Per-token log p(y_t | h_t) under softmax(W h_t), fused with the output layer.

    h (..., H) float32/float16/bfloat16, weight (V, H) same dtype, targets (...) int. Returns logp (...) float32,
    or (logp, entropy) with return_entropy (entropy carries no gradient). Tokens whose target is ignore_index get
    0 and no gradient. Differentiable w.r.t. h and weight (weight's gradient is recomputed in backward, only when
    it requires grad). backend: "auto" (Triton on CUDA, else the torch path), "triton", "torch". chunk_size:
    tokens per chunk (None = sized to a memory budget; the extra memory is about chunk × V elements).
    """
    check_inputs("linear_logprob", h, weight, targets)
    vocab = weight.shape[0]
    flat_h = h.reshape(-1, h.shape[-1])
    flat_t = targets.reshape(-1).long()
    bad = (flat_t != ignore_index) & ((flat_t < 0) | (flat_t >= vocab))
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(f"linear_logprob: target {int(flat_t[first])} at flat position {first} is outside "
                         f"[0, {vocab}) and is not ignore_index={ignore_index}")
    if flat_h.stride(-1) != 1:
        flat_h = flat_h.contiguous()
    if weight.stride(-1) != 1:
        weight = weight.contiguous()
    kernel = _logprob_stats_kernel if triton is not None else None
    backend = resolve_backend(backend, flat_h, kernel)
    out = LinearLogprobFunction.apply(flat_h, weight, flat_t, ignore_index, return_entropy, backend, chunk_size)
    if return_entropy:
        return out[0].view(targets.shape), out[1].view(targets.shape)
    return out.view(targets.shape)
