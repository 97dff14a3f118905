"""FakeLLM: a scripted chat model for chain, brain and pipeline tests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence

from voxdialog.providers.base import ChatDelta, ChatRequest, ProviderError, ProviderInfo

Script = str | Sequence[ChatDelta]


class FakeLLM:
    """Answers each request with the next script: a text (streamed word by word) or deltas.

    Args:
        scripts: One per call; when they run out, the last one repeats.
        name: The provider name in ``info``.
        first_token_s: Delay before the first delta.
        delta_s: Delay between deltas.
        fail_first: The first this-many calls raise ``ProviderError(retryable=...)``.
        retryable: Whether those failures are retryable.
        hang: Never answer (until cancelled).
        fail_after: Raise after this many deltas (a stream dropped mid-answer).
    """

    def __init__(
        self,
        scripts: Iterable[Script] = ("Hello.",),
        *,
        name: str = "fake-llm",
        first_token_s: float = 0.0,
        delta_s: float = 0.0,
        fail_first: int = 0,
        retryable: bool = True,
        hang: bool = False,
        fail_after: int | None = None,
    ) -> None:
        self.info = ProviderInfo(name=name, model="scripted", streaming=True)
        self._scripts: deque[Script] = deque(scripts)
        self._first_token_s = first_token_s
        self._delta_s = delta_s
        self._failures_left = fail_first
        self._retryable = retryable
        self.hang = hang
        self._fail_after = fail_after
        #: Every request received, in order.
        self.requests: list[ChatRequest] = []
        #: Streams closed or cancelled before their end.
        self.cancelled = 0

    def _next_script(self) -> Script:
        if len(self._scripts) > 1:
            return self._scripts.popleft()
        return self._scripts[0] if self._scripts else ""

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the next script."""
        self.requests.append(request)
        finished = False
        try:
            if self.hang:
                await asyncio.Event().wait()
            if self._first_token_s:
                await asyncio.sleep(self._first_token_s)
            if self._failures_left > 0:
                self._failures_left -= 1
                raise ProviderError("fake LLM failure", retryable=self._retryable, status=500)
            script = self._next_script()
            deltas = (
                [ChatDelta(text=w) for w in _words(script)] if isinstance(script, str) else script
            )
            for n, delta in enumerate(deltas):
                if self._fail_after is not None and n >= self._fail_after:
                    raise ProviderError("fake LLM stream dropped", retryable=True)
                if n and self._delta_s:
                    await asyncio.sleep(self._delta_s)
                yield delta
            finished = True
        finally:
            if not finished:
                self.cancelled += 1


def _words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(pieces) if p or i == 0]
