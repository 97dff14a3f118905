"""Failover delay of an LLM chain [primary, backup] against local OpenAI-compatible servers.

For each fault of the primary (HTTP 500, 429, refused connection, dropped stream before the
first token, hang), measures request start -> the backup's first delta, and subtracts the
healthy baseline (request start -> first delta of a working primary) so the figure is the
time failover itself adds. For a hang the attempt timeout is subtracted as well.
Writes bench/results/failover.{json,md}.

    .venv/bin/python -m bench.failover [--runs 20] [--attempt-timeout 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.report import write_report
from voxdialog.providers.base import ChatMessage, ChatRequest
from voxdialog.providers.chain import CallPolicy, FallbackLLM
from voxdialog.providers.openai_compat.llm import OpenAICompatLLM
from voxdialog.settings import ProviderSettings
from voxdialog.testing.fake_openai import ChatReply, FakeOpenAIServer, Fault
from voxdialog.testing.server import free_port

REQUEST = ChatRequest(messages=(ChatMessage(role="user", content="Hello?"),))


async def first_delta_ms(chain: FallbackLLM) -> float:
    """Request start -> first delta with text."""
    started = time.perf_counter()
    stream = chain.chat(REQUEST)
    try:
        async for delta in stream:
            if delta.text:
                return (time.perf_counter() - started) * 1000
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    raise RuntimeError("no answer")


def chain_of(primary_url: str, backup_url: str, timeout_s: float) -> FallbackLLM:
    members = [
        OpenAICompatLLM(
            ProviderSettings(
                kind="openai_compatible", base_url=primary_url, model="p", timeout_s=30
            ),
            name="primary",
        ),
        OpenAICompatLLM(
            ProviderSettings(
                kind="openai_compatible", base_url=backup_url, model="b", timeout_s=30
            ),
            name="backup",
        ),
    ]
    # A fresh chain per run: a breaker opened by earlier runs would skip the primary.
    policy = CallPolicy(attempt_timeout_s=timeout_s, breaker_failures=1000)
    return FallbackLLM(members, policy=policy, name="bench")


async def run(runs: int, timeout_s: float) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    faults: dict[str, Fault | None] = {
        "baseline_first_delta": None,
        "http_500": Fault(status=500, times=None),
        "http_429": Fault(status=429, times=None),
        "drop_before_first_token": Fault(drop_after=0, times=None),
        "hang_minus_timeout": Fault(hang=True, times=None),
    }
    with FakeOpenAIServer() as primary, FakeOpenAIServer() as backup:
        refused = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        for name, fault in [*faults.items(), ("connection_refused", None)]:
            primary.reset()
            backup.reset()
            primary.default_reply = ChatReply(text="primary answer")
            backup.default_reply = ChatReply(text="backup answer")
            if fault is not None:
                primary.inject(fault)
            url = refused if name == "connection_refused" else primary.url
            values = []
            for _ in range(runs):
                values.append(await first_delta_ms(chain_of(url, backup.url, timeout_s)))
            samples[name] = values
    base = sorted(samples["baseline_first_delta"])[len(samples["baseline_first_delta"]) // 2]
    out = {"baseline_first_delta": samples.pop("baseline_first_delta")}
    for name, values in samples.items():
        minus = base + (timeout_s * 1000 if name.startswith("hang") else 0.0)
        out[f"failover_added_{name}"] = [v - minus for v in values]
    return out


def main() -> int:
    """Run the benchmark and write its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--attempt-timeout", type=float, default=2.0)
    args = parser.parse_args()
    samples = asyncio.run(run(args.runs, args.attempt_timeout))
    print(
        write_report(
            "failover",
            samples,
            runs=args.runs,
            attempt_timeout_s=args.attempt_timeout,
            title=f"{args.runs} runs, attempt timeout {args.attempt_timeout} s",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
