"""`obliviate bench summary`: one table over a results file, one line per (benchmark, provider, shape, dtype).

Columns are the metrics each benchmark writes (median of the repeats): time (`ms` for kernels, `step_ms` for the
training step, `seconds` for evaluation), throughput (`tokens_per_s`, `probes_per_s`), the share of the measured
matmul peak reached on the FLOP floor (`of_matmul_peak`: 4·N·H·V for log-probs, 6·N·H·V for the KL) and peak
memory (`peak_mb`). Rows are filtered by device name and date so one machine's run can be read on its own.
"""
from __future__ import annotations

from collections import defaultdict

# metric -> (column title, format)
COLUMNS = {
    "ms": ("ms", "{:10.3f}"), "step_ms": ("step ms", "{:10.1f}"), "seconds": ("s", "{:8.2f}"),
    "of_matmul_peak": ("of peak", "{:7.2f}"), "tokens_per_s": ("tokens/s", "{:10.0f}"),
    "probes_per_s": ("probes/s", "{:9.1f}"), "peak_mb": ("peak MB", "{:9.1f}"),
}
ORDER = ("ms", "step_ms", "seconds", "of_matmul_peak", "tokens_per_s", "probes_per_s", "peak_mb")


def select(rows: list[dict], *, device: str | None = None, since: str | None = None) -> list[dict]:
    """Rows whose device name contains `device` (case-insensitive) and whose ISO date is ≥ `since`."""
    out = []
    for r in rows:
        if device is not None and device.lower() not in str(r.get("device", "")).lower():
            continue
        if since is not None and str(r.get("date", "")) < since:
            continue
        out.append(r)
    return out


def summary_table(rows: list[dict]) -> str:
    """A fixed-width table: one line per case in first-seen order; the newest row wins for repeated cases."""
    cases: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    devices = []
    for r in rows:
        if r["kernel"] == "matmul":
            continue
        key = (r["kernel"], r["provider"], r["shape"], r["dtype"])
        cases[key][r["metric"]] = r["median"]
        if r["device"] not in devices:
            devices.append(r["device"])
    if not cases:
        return "no benchmark rows"
    metrics = [m for m in ORDER if any(m in v for v in cases.values())]
    head = f"{'benchmark':10} {'provider':12} {'shape':30} {'dtype':8}" + "".join(
        f" {COLUMNS[m][0]:>{len(COLUMNS[m][1].format(0.0))}}" for m in metrics)
    lines = [f"device: {', '.join(devices)}", head, "-" * len(head)]
    for (kernel, provider, shape, dtype), values in cases.items():
        cells = []
        for m in metrics:
            width = len(COLUMNS[m][1].format(0.0))
            value = values.get(m)
            cells.append(" " + (COLUMNS[m][1].format(value) if value is not None else
                                ("OOM" if m in values else "")).rjust(width))
        lines.append(f"{kernel:10} {provider:12} {shape:30} {dtype:8}" + "".join(cells))
    return "\n".join(lines)
