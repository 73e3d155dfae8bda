"""Shared pieces of the fused linear kernels: backend choice, tile tables, chunk sizes, and the two Triton
building blocks both kernels use.

Both kernels (`linear_logprob.py`, `linear_kl.py`) run the same three-step schedule on a chunk of C tokens,
with z = h Wᵀ the logits, never stored:

1. *stats GEMM* (kernel in each file): one (BLOCK_M tokens × TILE_V vocabulary) tile of z per program, the K loop
   over H by `logit_tile` below; its epilogue keeps e = exp(z − m_j) with m_j the tile's own row maximum, and
   writes per-(token, tile j) partials (m_j, s_j = Σ e, ...) plus e itself (C × V, in the input dtype).
2. *combine* (`combine_tiles`, torch, C × T numbers, T = V / TILE_V): lse = log Σ_j s_j e^{m_j}, and the scale
   c_j = e^{m_j − lse} that turns the stored e back into probabilities: p_v = e_v · c_{j(v)}.
3. *probability GEMM* (`prob_matmul` below): Σ_v p_tv W_v (and Σ_v (p − q)_tv W_v for the KL) as a split-K GEMM
   whose A tile is rescaled in registers, so the final lse is applied without a second pass over z.

That is two GEMMs, 4·N·H·V FLOPs, the floor for logp and its h-gradient; the extra memory is one C × V buffer
in the input dtype (bounded by `CHUNK_BYTES`), never N × V.

`import triton` is guarded: without triton (or without a GPU driver) the package still imports and the torch
path runs. Triton kernels run on CPU tensors only under the interpreter (TRITON_INTERPRET=1 set before triton is
first imported).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

try:  # optional: CPU-only installs run the torch path
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None

BACKENDS = ("auto", "triton", "torch")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Budget for the per-chunk buffer of stored exponentials e (C × V in the input dtype). 512 MiB gives C = 1664
# tokens at V = 151936 in bf16: a chunk that keeps the stats GEMM (M = C) and the probability GEMM (N = H) large
# enough for full waves, while e + split-K partials + stats stay under the 1 GB extra-memory target at the 7B shape.
CHUNK_BYTES = 512 << 20
# Budget for the fp32 (C × V) blocks of the torch path: 2 (logprob) or 3 (KL) alive at once; 256 MiB keeps a CPU
# run small while chunks of thousands of tokens amortise the per-chunk overhead.
TORCH_CHUNK_BYTES = 256 << 20
# The probability GEMM reduces over V (~150k) to an output of only C × H tiles (13 × 14 at C = 1664, H = 3584):
# one wave on 132 SMs is not even full, so K is split; more than 8 splits only adds fp32 partials (S × C × H).
MAX_SPLITS = 8
# Stand-in SM count for the interpreter: small, so the tests exercise more than one split.
INTERPRETER_SMS = 8


class Tiles(NamedTuple):
    """Block sizes of one GEMM kernel: rows (tokens), columns (vocabulary or hidden), reduction step."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int


# Tile choices were checked by compiling for sm_90a without a GPU (triton.compile + the bundled ptxas -v, pointers
# and strides marked 16-divisible as at run time): every kernel below pipelines its K loop with cp.async and, in
# 16-bit, issues wgmma.
# Hopper (sm90), 16-bit inputs. Stats GEMM: 128 × 256 fp32 accumulator (128 registers a thread at 8 warps, the
# largest tile wgmma keeps in registers), 3 stages × (16 KB h + 32 KB W) = 144 KB of the 227 KB shared memory;
# ptxas: 255 registers and ~260 bytes of spill stores, all in the epilogue (none in the K loop, SASS checked), so
# once per 56-step tile. TILE_V = 256 keeps the partials at T = 594 a token. Probability GEMM: 128 tokens × 256 hidden with
# a (64 × 256) W slab as B, 221 registers, no spills (246 for the KL's two A operands, 162 KB); BLOCK_K = 64
# divides TILE_V, so one K step never straddles two tiles' scales.
_SM90 = (Tiles(128, 256, 64, 8, 3), Tiles(128, 256, 64, 8, 3))
# The KL keeps two accumulators (policy and reference logits): a 128 × 128 vocabulary tile, 229 registers, no
# spills; 192 KB with a separate W_ref slab.
_SM90_PAIR = (Tiles(128, 128, 64, 8, 3), Tiles(128, 256, 64, 8, 3))
# A100 (sm80, 164 KB shared memory): 128 × 128 tiles, 3 stages × 32 KB; sm86/89 (100 KB): 2 stages, leaving room
# for the epilogue's reduction scratch.
_SM80 = (Tiles(128, 128, 64, 8, 3), Tiles(128, 128, 64, 8, 3))
_SM86 = (Tiles(128, 128, 64, 8, 2), Tiles(128, 128, 64, 8, 2))
# Older GPUs: conservative tiles that fit 48 KB of shared memory.
_OLD = (Tiles(64, 128, 32, 4, 2), Tiles(64, 128, 32, 4, 2))
# fp32 inputs on any GPU: 'ieee' products run on the FMA units, not tensor cores; these tiles compile without
# spills (the 16-bit ones spill 0.3-1.3 KB a thread in fp32).
_FP32 = (Tiles(64, 128, 32, 4, 3), Tiles(128, 128, 32, 8, 3))
_FP32_PAIR = (Tiles(64, 64, 32, 4, 3), Tiles(128, 128, 32, 8, 3))
# Interpreter: the interpreter's cost is per program and per op, so fewer, larger tiles run faster; BLOCK_K = 32
# still makes the tests' H = 48 take two masked K steps and V = 1001 end in a partial tile.
_INTERPRETER = (Tiles(32, 128, 32, 4, 1), Tiles(32, 32, 64, 4, 1))


def interpreting(kernel) -> bool:
    """True when `kernel` was decorated while TRITON_INTERPRET=1 (triton decides at decoration time)."""
    return type(kernel).__name__ == "InterpretedFunction"


def resolve_backend(backend: str, tensor: torch.Tensor, kernel) -> str:
    """'auto' -> 'triton' for CUDA tensors when triton imports, else 'torch'; checks that 'triton' can run."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if triton is not None and tensor.is_cuda else "torch"
    if backend == "triton":
        if triton is None:
            raise RuntimeError("backend='triton' needs the triton package: pip install triton (or use backend='torch')")
        if not tensor.is_cuda and not interpreting(kernel):
            raise RuntimeError(
                "backend='triton' on CPU tensors runs only in the Triton interpreter: set TRITON_INTERPRET=1 in the "
                "environment before triton is first imported (before importing obliviate), or use backend='torch'"
            )
    return backend


def tile_config(tensor: torch.Tensor, *, pair: bool = False) -> tuple[Tiles, Tiles]:
    """(stats/recompute GEMM tiles, probability GEMM tiles) for the device and dtype of `tensor` (CPU tensors reach
    the Triton path only under the interpreter). The first's block_n is TILE_V."""
    if not tensor.is_cuda:
        return _INTERPRETER
    if tensor.dtype == torch.float32:
        return _FP32_PAIR if pair else _FP32
    cap = torch.cuda.get_device_capability(tensor.device)
    if cap >= (9, 0):
        return _SM90_PAIR if pair else _SM90
    return _SM80 if cap == (8, 0) else _SM86 if cap >= (8, 0) else _OLD


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs get exact fp32 products ('ieee', as torch.matmul by default); TF32 would cost ~1e-3 in z."""
    return "ieee" if dtype == torch.float32 else "tf32"


def token_chunk(n_tokens: int, bytes_per_token: int, multiple: int, *, budget: int, chunk_size: int | None) -> int:
    """Tokens per chunk: `chunk_size` or as many as fit `budget`, a multiple of `multiple`, balanced over chunks."""
    cap = chunk_size if chunk_size is not None else max(1, budget // max(1, bytes_per_token))
    if cap < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    cap = max(multiple, cap // multiple * multiple)
    n_chunks = max(1, math.ceil(n_tokens / cap))
    per_chunk = math.ceil(n_tokens / n_chunks)
    return max(multiple, math.ceil(per_chunk / multiple) * multiple)


def check_inputs(name, h, weight, targets=None):
    """Shapes, dtypes and devices shared by both kernels' public functions."""
    if weight.dim() != 2 or h.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name}: h (..., H) and weight (V, H) disagree: {tuple(h.shape)} vs {tuple(weight.shape)}")
    if h.dtype not in DTYPES or weight.dtype != h.dtype:
        raise TypeError(f"{name}: h and weight must share one of float32/float16/bfloat16, got {h.dtype}, "
                        f"{weight.dtype}")
    if h.device != weight.device:
        raise ValueError(f"{name}: h on {h.device} but weight on {weight.device}")
    if targets is not None and (targets.shape != h.shape[:-1] or targets.dtype not in (torch.int64, torch.int32)):
        raise ValueError(f"{name}: targets must be integer with shape {tuple(h.shape[:-1])}, got "
                         f"{targets.dtype} {tuple(targets.shape)}")


def combine_tiles(m: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge per-tile softmax partials. m, s: (C, T) tile maxima and Σ e^{z − m_j}.

    Returns lse (C,) = log Σ_j s_j e^{m_j} and the scales c (C, T) = e^{m_j − lse}, so that p_v = e_v · c_{j(v)}.
    """
    top = m.amax(dim=1, keepdim=True)  # (C, 1)
    lse = top[:, 0] + torch.log((s * torch.exp(m - top)).sum(dim=1))  # (C,)
    return lse, torch.exp(m - lse[:, None])


def _choose_splits(tiles: int, sms: int) -> int:
    """Smallest K-split that fills >= 85% of the last wave with at least one full wave; else the best one."""
    best, best_eff = 1, 0.0
    for splits in range(1, MAX_SPLITS + 1):
        programs = tiles * splits
        eff = programs / (math.ceil(programs / sms) * sms)
        if programs >= sms and eff >= 0.85:
            return splits
        if eff > best_eff + 1e-9:
            best, best_eff = splits, eff
    return best


if triton is not None:

    @triton.jit
    def logit_tile(x_ptr, stride_x, w_ptr, stride_w, rows, cols, M, V, K,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PREC: tl.constexpr):
        """z[rows, cols] = x[rows] · W[cols]ᵀ as a (BLOCK_M, BLOCK_N) fp32 tile; W is read as a (BLOCK_K, BLOCK_N)
        slab so that tl.dot sees x @ Wᵀ without a transpose."""
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        row_ok = rows[:, None] < M
        col_ok = cols[None, :] < V
        x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_x  # int64: V × H passes 2^31 for large vocabularies
        w_rows = w_ptr + cols.to(tl.int64)[None, :] * stride_w
        for k0 in range(0, K, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_rows + ks[None, :], mask=row_ok & (ks[None, :] < K), other=0.0)
            w = tl.load(w_rows + ks[:, None], mask=col_ok & (ks[:, None] < K), other=0.0)
            acc += tl.dot(x, w, input_precision=PREC)
        return acc

    @triton.jit
    def _prob_matmul_kernel(e1_ptr, c1_ptr, e2_ptr, c2_ptr, w_ptr, out_ptr,
                            M, V, HID, T, split_len, stride_e, stride_w,
                            TILE_V: tl.constexpr, PAIR: tl.constexpr, PREC: tl.constexpr,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """out[split, t, n] = Σ_{v in split} A[t, v] W[v, n], A = e1·c1 (− e2·c2 when PAIR), c indexed by v's tile.

        Grid (row blocks × hidden blocks, splits); row blocks vary fastest so the programs that share one W slab
        run side by side and read it from L2.
        """
        pid = tl.program_id(0)
        split = tl.program_id(1)
        num_m = tl.cdiv(M, BLOCK_M)
        rows = (pid % num_m) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,) tokens
        hid = (pid // num_m) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,) hidden units
        row_ok = rows < M
        hid_ok = hid < HID
        k_lo = split * split_len
        k_hi = tl.minimum(k_lo + split_len, V)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        e1_rows = e1_ptr + rows.to(tl.int64)[:, None] * stride_e
        e2_rows = e2_ptr + rows.to(tl.int64)[:, None] * stride_e
        for k0 in range(k_lo, k_hi, BLOCK_K):  # k0 is a multiple of BLOCK_K, which divides TILE_V
            ks = k0 + tl.arange(0, BLOCK_K)
            a_ok = row_ok[:, None] & (ks[None, :] < k_hi)
            c1 = tl.load(c1_ptr + rows * T + k0 // TILE_V, mask=row_ok, other=0.0)  # (BM,)
            a = tl.load(e1_rows + ks[None, :], mask=a_ok, other=0.0).to(tl.float32)
            a = a * c1[:, None]
            if PAIR:
                c2 = tl.load(c2_ptr + rows * T + k0 // TILE_V, mask=row_ok, other=0.0)
                a2 = tl.load(e2_rows + ks[None, :], mask=a_ok, other=0.0).to(tl.float32)
                a = a - a2 * c2[:, None]
            w = tl.load(w_ptr + ks.to(tl.int64)[:, None] * stride_w + hid[None, :],
                        mask=(ks[:, None] < k_hi) & hid_ok[None, :], other=0.0)
            acc += tl.dot(a.to(w.dtype), w, input_precision=PREC)
        out = out_ptr + (split * M + rows).to(tl.int64)[:, None] * HID + hid[None, :]
        tl.store(out, acc, mask=row_ok[:, None] & hid_ok[None, :])

else:  # pragma: no cover - names the kernel files import
    logit_tile = None


def prob_matmul(e1: torch.Tensor, c1: torch.Tensor, weight: torch.Tensor, *, tile_v: int, tiles: Tiles,
                e2: torch.Tensor | None = None, c2: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_v (e1·c1 − e2·c2)_tv W_v as a (C, H) fp32 tensor. e: (C, V) stored exponentials (row stride may exceed V
    only by being a row slice of a larger buffer), c: (C, T) per-tile scales, weight: (V, H)."""
    rows, vocab = e1.shape
    hidden = weight.shape[1]
    if tile_v % tiles.block_k:
        raise ValueError(f"probability GEMM: BLOCK_K {tiles.block_k} must divide TILE_V {tile_v}")
    grid_mn = triton.cdiv(rows, tiles.block_m) * triton.cdiv(hidden, tiles.block_n)
    sms = torch.cuda.get_device_properties(e1.device).multi_processor_count if e1.is_cuda else INTERPRETER_SMS
    splits = _choose_splits(grid_mn, sms)
    split_len = triton.cdiv(triton.cdiv(vocab, splits), tiles.block_k) * tiles.block_k
    splits = triton.cdiv(vocab, split_len)
    partial = torch.empty(splits, rows, hidden, device=e1.device, dtype=torch.float32)  # (S, C, H)
    pair = e2 is not None
    _prob_matmul_kernel[(grid_mn, splits)](
        e1, c1, e2 if pair else e1, c2 if pair else c1, weight, partial,
        rows, vocab, hidden, c1.shape[1], split_len, e1.stride(0), weight.stride(0),
        TILE_V=tile_v, PAIR=pair, PREC=dot_precision(weight.dtype),
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k,
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )
    return partial[0] if splits == 1 else partial.sum(dim=0)
