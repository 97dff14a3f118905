"""The JSON the OpenAI fake writes: chat completions (whole or in chunks), verbose transcriptions
and error bodies, shaped as OpenAI's (checked with the official ``openai`` SDK)."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    """A tool call the fake model makes (``id`` defaults to ``call_<n>``)."""

    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True, slots=True)
class ChatReply:
    """What the fake model answers: text (streamed word by word) and/or tool calls."""

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    reasoning: str = "Let me think about that."


def openai_error(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body (``server_error`` for a 5xx, else ``invalid_request_error``)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def sse(data: object) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    return f"data: {json.dumps(data)}\n\n".encode()


def words(text: str) -> list[str]:
    """``text`` cut before each word's leading space, the way the fake streams it."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _call(call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    function = {"name": name, "arguments": arguments}
    return {"id": call_id, "type": "function", "function": function}


class ChatAnswer:
    """One answer to ``POST /v1/chat/completions``, as a whole or as chunks.

    Args:
        reply: What the model says.
        body: The request (its ``model`` and ``messages`` are required).
        ids: Numbers for the completion's and the tool calls' made-up ids.
    """

    def __init__(self, reply: ChatReply, body: dict[str, Any], ids: Iterator[int]) -> None:
        self.reply = reply
        self.calls = [(c.id or f"call_{next(ids)}", c) for c in reply.tool_calls]
        self.head = {"id": f"chatcmpl-{next(ids)}", "created": int(time.time())}
        self.head["model"] = str(body["model"])
        self.finish = "tool_calls" if self.calls else "stop"
        prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        done = len(words(reply.text))
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": done,
            "total_tokens": prompt + done,
        }

    def completion(self) -> dict[str, Any]:
        """The whole answer, a ``chat.completion``."""
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.text or None}
        if self.calls:
            message["tool_calls"] = [_call(i, c.name, c.arguments) for i, c in self.calls]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}
        completion = {**self.head, "object": "chat.completion", "choices": [choice]}
        return {**completion, "usage": self.usage}

    def chunks(self, *, reasoning: bool, usage: bool) -> list[dict[str, Any]]:
        """The answer as ``chat.completion.chunk``s: a word of text, or 8 characters of a tool
        call's arguments, per chunk.

        Args:
            reasoning: Think aloud first, in DeepSeek's field and Ollama/OpenRouter's in turn.
            usage: End with a usage chunk (``stream_options.include_usage``).
        """
        chunks = [self._chunk({"role": "assistant", "content": ""})]
        if reasoning:
            fields = itertools.cycle(("reasoning_content", "reasoning"))
            chunks += [
                self._chunk({"content": None, next(fields): w}) for w in words(self.reply.reasoning)
            ]
        chunks += [self._chunk({"content": word}) for word in words(self.reply.text)]
        for index, (call_id, call) in enumerate(self.calls):
            opening = {"index": index, **_call(call_id, call.name)}
            chunks.append(self._chunk({"tool_calls": [opening]}))
            for start in range(0, len(call.arguments), 8):
                fragment = {"arguments": call.arguments[start : start + 8]}
                chunks.append(self._chunk({"tool_calls": [{"index": index, "function": fragment}]}))
        chunks.append(self._chunk({}, self.finish))
        if usage:
            chunks.append({**self._chunk({}), "choices": [], "usage": self.usage})
        return chunks

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self.head, "object": "chat.completion.chunk", "choices": [choice]}


def verbose_transcription(
    text: str, *, duration: float, language: str, word_times: bool
) -> dict[str, Any]:
    """A ``verbose_json`` transcription: one segment, and evenly spread words if asked for."""
    answer: dict[str, Any] = {
        "task": "transcribe",
        "language": language,
        "duration": duration,
        "text": text,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": duration,
                "text": text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        ],
    }
    if word_times:
        spoken = words(text)
        step = duration / max(1, len(spoken))
        answer["words"] = [
            {"word": w.strip(), "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
            for i, w in enumerate(spoken)
        ]
    return answer
