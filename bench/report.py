"""Percentiles and the JSON + Markdown reports every benchmark writes to bench/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], q: float) -> float | None:
    """Percentile by nearest rank (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """n, p50, p95 and median per measure."""
    return {
        name: {
            "n": len(v),
            "p50": pct(v, 0.5),
            "p95": pct(v, 0.95),
            "median": round(statistics.median(v), 2),
        }
        for name, v in samples.items()
        if v
    }


def write_report(name: str, samples: dict[str, list[float]], *, title: str, **details: Any) -> str:
    """Write ``<name>.json`` and ``<name>.md``; return the Markdown table."""
    summary = summarize(samples)
    report = {
        "benchmark": name,
        **details,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stages": summary,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# {name} ({report['when']}, {os.cpu_count()} CPUs, {title})",
        "",
        "| measure | n | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {v['n']} | {v['p50']} | {v['p95']} |" for k, v in summary.items()]
    table = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(table)
    return table
