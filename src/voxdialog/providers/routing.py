"""Smart routing: send each turn to the LLM chain its query class calls for."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TypeVar

from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import (
    LLM,
    STT,
    ChatDelta,
    ChatRequest,
    ProviderInfo,
    STTPriority,
    Transcript,
    stt_busy,
    warm_up,
)
from voxdialog.providers.chain import ProviderChain
from voxdialog.settings import RouteRule

log = logging.getLogger(__name__)

_WH_WORDS = frozenset({"what", "who", "whom", "whose", "which", "when", "where", "why", "how"})
# Auxiliaries that open a yes/no question ("Is it ...", "Can you ..."). "Don't" is left out: it
# opens commands ("Don't stop") far more often than questions.
_AUXILIARIES = frozenset(
    {
        *("am", "is", "are", "was", "were", "do", "does", "did", "have", "has", "had"),
        *("can", "could", "will", "would", "shall", "should", "may", "might", "must"),
        *("isn't", "aren't", "wasn't", "doesn't", "didn't", "can't", "won't", "wouldn't"),
        *("couldn't", "shouldn't", "haven't", "hasn't"),
    }
)
_EDGE_PUNCTUATION = "\"'¿¡([{,.;:!?…-"


def classify(text: str, *, max_words: int) -> set[str]:
    """The query classes of ``text``: ``"short"`` or ``"long"``, plus ``"question"``.

    Args:
        text: what the user said.
        max_words: the longest text (in words) that is still ``"short"``.

    Returns:
        ``{"short"}`` or ``{"long"}``, with ``"question"`` added when the text ends with a
        question mark or opens with a wh-word or an auxiliary ("what's", "can you", "is it").
    """
    words = text.split()
    classes = {"short" if len(words) <= max_words else "long"}
    if text.rstrip().endswith(("?", "？")) or (words and _opens_question(words[0])):
        classes.add("question")
    return classes


def _opens_question(word: str) -> bool:
    first = word.lower().replace("’", "'").strip(_EDGE_PUNCTUATION)
    # "what's", "how'd", "who're": the wh-word before the contraction still decides.
    head = first.split("'", 1)[0]
    return first in _AUXILIARIES or first in _WH_WORDS or head in _WH_WORDS


class RoutedLLM:
    """An ``LLM`` that picks, per request, the first route matching the last user message.

    A route whose LLM is a provider chain with every breaker open is skipped, so a turn does
    not wait on a chain that is known to be down; when no route fits, ``default`` answers.

    Args:
        default: the LLM for turns no route takes.
        routes: ``(rule, llm)`` pairs, tried in order.
        name: the provider name in ``info``.
    """

    def __init__(
        self,
        default: LLM,
        routes: Sequence[tuple[RouteRule, LLM]],
        *,
        name: str = "router",
    ) -> None:
        self.default = default
        self.routes = tuple(routes)
        self.info = ProviderInfo(name=name, model=default.info.model, streaming=True)

    def pick(self, request: ChatRequest) -> LLM:
        """The LLM that should answer ``request``."""
        text = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        for rule, llm in self.routes:
            if rule.when != "always" and rule.when not in classify(text, max_words=rule.max_words):
                continue
            if isinstance(llm, ProviderChain) and not llm.available():
                log.info("route skipped: chain down", extra={"route": rule.when, "llm": llm.name})
                continue
            log.debug("route chosen", extra={"route": rule.when, "llm": llm.info.name})
            return llm
        return self.default

    def chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the answer of the LLM ``pick`` chooses."""
        return self.pick(request).chat(request)

    async def warmup(self) -> None:
        """Warm up the default LLM and every route's (``WarmsUp``)."""
        for llm in _distinct([self.default, *(llm for _, llm in self.routes)]):
            await warm_up(llm)


class LanguageRoutedSTT:
    """Speech to text that goes to the chain preferred for the turn's language.

    Args:
        default: For turns with no language, or one no provider is preferred for.
        by_language: ISO 639-1 code -> the chain to use (preferred providers first).
    """

    def __init__(self, default: STT, by_language: Mapping[str, STT]) -> None:
        self.default = default
        self.by_language = dict(by_language)
        self.info = default.info

    @property
    def busy(self) -> bool:
        """Whether any of its chains is busy (``BusyReporting``).

        The language of the next call is not known here, and skipping optional work (a
        partial transcript) costs less than queueing it behind a final one.
        """
        return any(stt_busy(stt) for stt in _distinct([self.default, *self.by_language.values()]))

    async def warmup(self) -> None:
        """Warm up every chain (``WarmsUp``)."""
        for stt in _distinct([self.default, *self.by_language.values()]):
            await warm_up(stt)

    def pick(self, language: str | None) -> STT:
        """The STT for ``language`` (its primary subtag: "pt-BR" -> "pt")."""
        if not language:
            return self.default
        return self.by_language.get(language.split("-")[0].lower(), self.default)

    async def transcribe(
        self,
        clip: AudioChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = False,
        priority: STTPriority = STTPriority.LIVE,
    ) -> Transcript:
        """Transcribe with the chain for ``language``."""
        return await self.pick(language).transcribe(
            clip,
            language=language,
            prompt=prompt,
            word_timestamps=word_timestamps,
            priority=priority,
        )


_Item = TypeVar("_Item")


def _distinct(items: Sequence[_Item]) -> list[_Item]:
    """``items`` without repeats of the same object (one chain may serve several routes)."""
    return list({id(item): item for item in items}.values())
