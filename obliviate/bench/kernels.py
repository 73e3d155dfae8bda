"""`obliviate bench kernels`: forward + backward of the fused output-layer kernels against eager torch and Liger.

Providers, per kernel (logprob: per-token log p(y_t); kl: per-token KL(p_ref ‖ p_θ)):
- fused: `obliviate.kernels` with backend "auto" (Triton on CUDA, the chunked torch path on CPU);
- eager: the materialising reference with the inputs' dtype (logits in bf16, log-softmax in fp32, as
  transformers' models do), i.e. what an unfused training step pays;
- liger: Liger-Kernel's fused linear cross-entropy with reduction="none" (logp = −CE), logprob only, CUDA only,
  when `liger_kernel` imports.
One fwd+bwd step is: loss = Σ_t g_t · out_t with a random upstream g (any loss built from per-token values), the
gradient to h only (frozen W, as under LoRA). Floors: 4·N·H·V FLOPs for logprob (z = h Wᵀ, then Σ p W), 6·N·H·V
for kl (z, z_ref, then Σ (p − q) W). Reported per case: time (median, p20, p80 over repeats), achieved TFLOP/s on
the floor, its ratio to a bf16 (CPU: fp32) matmul peak measured in the same run, and the peak extra memory of one
step (CUDA: max_memory_allocated over the inputs; CPU: `TensorMemory`).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from obliviate.bench import results as res
from obliviate.files import default_device
from obliviate.kernels import linear_kl, linear_kl_reference, linear_logprob, linear_logprob_reference
from obliviate.kernels.memory import TensorMemory

# (hidden, vocabulary). Qwen2.5-0.5B/3B/7B final-norm width and vocabulary (the 7B config pads V to 152064; the
# design's target is stated at 151936, used here for all three). "cpu" is a small shape for the CPU smoke run.
SHAPES = {"0.5b": (896, 151936), "3b": (2048, 151936), "7b": (3584, 151936), "cpu": (256, 8192)}
KERNELS = ("logprob", "kl")
PROVIDERS = ("eager", "fused", "liger")  # eager first: the others print their speed-up over it
FLOOR_GEMMS = {"logprob": 2, "kl": 3}  # GEMMs of 2·N·H·V FLOPs in the floor
CUDA_DEFAULTS = dict(shapes=("0.5b", "3b", "7b"), sizes=(1024, 2048, 4096, 8192, 16384), repeats=20, warmup=3)
CPU_QUICK = dict(shapes=("cpu",), sizes=(256, 1024), repeats=3, warmup=1)
CPU_FULL = dict(shapes=("cpu",), sizes=(256, 1024, 4096), repeats=5, warmup=1)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _liger_logprob():
    """logp = −CE(reduction='none') through Liger-Kernel, or None where it does not import."""
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        try:
            from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
        except ImportError:
            return None
        loss = LigerFusedLinearCrossEntropyLoss(reduction="none")
        return lambda h, w, y, r: -loss(w, h, y)
    return lambda h, w, y, r: -liger_fused_linear_cross_entropy(h, w, y, reduction="none")


def provider_fn(kernel: str, provider: str, device: torch.device):
    """f(h, weight, targets, h_ref) -> per-token values, or None when the provider cannot run here."""
    if kernel == "logprob":
        if provider == "fused":
            return lambda h, w, y, r: linear_logprob(h, w, y)
        if provider == "eager":
            return lambda h, w, y, r: linear_logprob_reference(h, w, y)
        return _liger_logprob() if device.type == "cuda" else None
    if provider == "fused":
        return lambda h, w, y, r: linear_kl(h, r, w)
    if provider == "eager":
        return lambda h, w, y, r: linear_kl_reference(h, r, w)
    return None


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(step, device, *, warmup: int, repeats: int) -> list[float]:
    """Wall (CPU) or CUDA-event time of `step()` in milliseconds, per repeat."""
    for _ in range(warmup):
        step()
    _sync(device)
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def peak_bytes(step, device) -> int:
    """Peak memory of one `step()` above what was allocated before it."""
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    with TensorMemory() as mem:
        step()
    return mem.peak


def matmul_tflops(device, dtype, *, quick: bool, warmup: int, repeats: int) -> tuple[str, list[float]]:
    """The dense matmul peak of this device and dtype: (shape, TFLOP/s per repeat)."""
    n = 8192 if device.type == "cuda" else 1024 if quick else 2048  # large enough to reach the plateau
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    ms = time_ms(lambda: a @ b, device, warmup=warmup, repeats=repeats)
    return f"M=N=K={n}", [2 * n ** 3 / (t * 1e-3) / 1e12 for t in ms]


def make_inputs(kernel, n, hidden, vocab, dtype, device, *, seed=0):
    """h (N, H) requiring grad, a frozen W (V, H) ~ N(0, 1/H) (logits of unit scale), targets, upstream g, h_ref."""
    gen = torch.Generator(device=device).manual_seed(seed)
    h = torch.randn(n, hidden, device=device, dtype=dtype, generator=gen).requires_grad_()
    w = (torch.randn(vocab, hidden, device=device, dtype=dtype, generator=gen) * hidden ** -0.5)
    y = torch.randint(0, vocab, (n,), device=device, generator=gen)
    g = torch.randn(n, device=device, generator=gen)
    h_ref = (h.detach() + 0.1 * torch.randn(n, hidden, device=device, dtype=dtype, generator=gen)) \
        if kernel == "kl" else None
    return h, w, y, g, h_ref


def parse_shapes(spec) -> list[tuple[str, int, int]]:
    """Names from SHAPES or 'H:V' pairs -> [(label, H, V)]."""
    out = []
    for item in spec:
        if item in SHAPES:
            out.append((item, *SHAPES[item]))
        elif ":" in item:
            hidden, vocab = (int(x) for x in item.split(":"))
            out.append((f"{hidden}:{vocab}", hidden, vocab))
        else:
            raise ValueError(f"unknown shape {item!r}: use one of {sorted(SHAPES)} or H:V (e.g. 896:151936)")
    return out


def run(*, kernels=None, providers=None, shapes=None, sizes=None, dtype=None, quick=None, repeats=None,
        warmup=None, results=None, profile=None, device=None, echo=print) -> list[dict]:
    """Measure every (kernel, shape, N, provider); print a table as it goes; append tidy rows; return them.

    profile: a folder; the largest N of the first shape is also run once under torch.profiler per (kernel,
    provider), writing a Chrome trace there and printing the top ops. None options take the device's defaults.
    """
    device = default_device(device)
    quick = device.type == "cpu" if quick is None else quick
    defaults = CUDA_DEFAULTS if device.type == "cuda" else CPU_QUICK if quick else CPU_FULL
    kernels, providers = tuple(kernels or KERNELS), tuple(providers or PROVIDERS)
    for name, given, allowed in (("kernel", kernels, KERNELS), ("provider", providers, PROVIDERS)):
        if set(given) - set(allowed):
            raise ValueError(f"unknown {name}(s) {sorted(set(given) - set(allowed))}: choose from {allowed}")
    shape_list = parse_shapes(shapes or defaults["shapes"])
    sizes = tuple(int(n) for n in (sizes or defaults["sizes"]))
    repeats = repeats or defaults["repeats"]
    warmup = defaults["warmup"] if warmup is None else warmup
    dtype_name = dtype or ("bf16" if device.type == "cuda" else "fp32")
    if dtype_name not in DTYPES:
        raise ValueError(f"unknown dtype {dtype_name!r}: choose from {sorted(DTYPES)}")
    env = dict(device=res.device_name(device), env_versions=res.versions(), date=res.now())
    mm_shape, mm = matmul_tflops(device, DTYPES[dtype_name], quick=quick, warmup=warmup, repeats=repeats)
    peak = res.quantiles(mm)[0]
    rows = [res.row(kernel="matmul", provider="torch", shape=mm_shape, dtype=dtype_name, metric="tflops",
                    samples=mm, **env)]
    echo(f"device {env['device']}, {dtype_name}: matmul peak {peak:.3g} TFLOP/s ({mm_shape})")
    echo(f"{'':>8} {'kernel':8} {'provider':8} {'shape':>6} {'N':>6} {'floor ms':>9} {'ms':>9} {'TFLOP/s':>8} "
         f"{'of peak':>7} {'peak MB':>9} {'vs eager':>8}")
    cases = [(k, s, n, p) for k in kernels for s in shape_list for n in sizes for p in providers]
    eager_ms = {}
    for i, (kernel, (label, hidden, vocab), n, provider) in enumerate(cases, 1):
        trace = None
        if profile is not None and label == shape_list[0][0] and n == max(sizes):
            trace = Path(profile) / f"{kernel}-{provider}-{label.replace(':', 'x')}-N{n}.json"
        head = f"[{i}/{len(cases)}]".rjust(8) + f" {kernel:8} {provider:8} {label:>6} {n:>6}"
        rows += run_case(kernel, provider, n, hidden, vocab, dtype_name, device, env, peak, eager_ms, head,
                         warmup=warmup, repeats=repeats, trace=trace, echo=echo)
    path = res.append_rows(rows, results)
    echo(f"{len(rows)} rows appended to {path}")
    return rows


def run_case(kernel, provider, n, hidden, vocab, dtype_name, device, env, peak, eager_ms, head, *, warmup, repeats,
             trace, echo) -> list[dict]:
    """Measure one provider on one shape, print its table line; its tidy rows (none when it cannot run here)."""
    fn = provider_fn(kernel, provider, device)
    if fn is None:
        return []
    flops = FLOOR_GEMMS[kernel] * 2 * n * hidden * vocab
    tag = dict(kernel=kernel, provider=provider, shape=f"N={n} H={hidden} V={vocab}", dtype=dtype_name, **env)
    try:
        ms, mem, table = _measure(kernel, fn, n, hidden, vocab, DTYPES[dtype_name], device, warmup=warmup,
                                  repeats=repeats, trace=trace)
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        echo(f"{head}  out of memory")
        return [res.row(metric="ms", samples=None, **tag)]
    tflops = [flops / (t * 1e-3) / 1e12 for t in ms]
    med = res.quantiles(ms)[0]
    if provider == "eager":
        eager_ms[(kernel, tag["shape"])] = med
    eager = eager_ms.get((kernel, tag["shape"]))
    speed = f"{eager / med:7.2f}x" if eager and provider != "eager" else ""
    echo(f"{head} {flops / peak / 1e9:9.3f} {med:9.3f} {flops / (med * 1e-3) / 1e12:8.3g} "
         f"{flops / (med * 1e-3) / 1e12 / peak:7.2f} {mem / 2 ** 20:9.1f} {speed:>8}")
    if table:
        echo(table)
    return [res.row(metric="ms", samples=ms, **tag), res.row(metric="tflops", samples=tflops, **tag),
            res.row(metric="of_matmul_peak", samples=[t / peak for t in tflops], **tag),
            res.row(metric="peak_mb", samples=mem / 2 ** 20, **tag)]


def _measure(kernel, fn, n, hidden, vocab, dtype, device, *, warmup, repeats, trace):
    """(times in ms, peak extra bytes, profiler table or None) of one provider on one shape."""
    h, w, y, g, h_ref = make_inputs(kernel, n, hidden, vocab, dtype, device)

    def step():
        h.grad = None
        fn(h, w, y, h_ref).backward(g)

    ms = time_ms(step, device, warmup=warmup, repeats=repeats)
    mem = peak_bytes(step, device)
    return ms, mem, profile_step(step, device, trace) if trace is not None else None


def profile_step(step, device, trace: Path) -> str:
    """Run `step` once under torch.profiler, write a Chrome trace, return the top ops by device (CPU) time."""
    trace.parent.mkdir(parents=True, exist_ok=True)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
        _sync(device)
    prof.export_chrome_trace(str(trace))
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return f"profile {trace}:\n" + prof.key_averages().table(sort_by=key, row_limit=10)
