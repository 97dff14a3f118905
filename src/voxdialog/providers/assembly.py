"""Build the stages an agent names: local models from the registry, remote providers from
settings, and a fallback chain when more than one is named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voxdialog.providers.base import LLM, STT, TTS, close_provider
from voxdialog.providers.registry import ProviderRegistry, UnknownProvider
from voxdialog.settings import ChainSettings, ProviderSettings, RouteRule

_LLM_KINDS = {
    "openai",
    "xai",
    "openrouter",
    "groq",
    "ollama",
    "vllm",
    "lmstudio",
    "openai_compatible",
    "speaches",
    "anthropic",
    "webhook",
}


class ProviderConfigError(ValueError):
    """An agent names a provider that is not declared, or one of the wrong kind."""


def _remote(name: str, config: ProviderSettings) -> Any:
    # Imported here: a server with only local models never loads the HTTP clients.
    if config.stage == "llm":
        if config.kind == "anthropic":
            from voxdialog.providers.anthropic import AnthropicLLM

            return AnthropicLLM(config, name=name)
        if config.kind == "webhook":
            from voxdialog.providers.webhook import WebhookLLM

            return WebhookLLM(config, name=name)
        if config.kind in _LLM_KINDS:
            from voxdialog.providers.openai_compat.llm import OpenAICompatLLM

            return OpenAICompatLLM(config, name=name)
    if config.stage == "stt" and config.kind not in ("anthropic", "webhook", "elevenlabs"):
        from voxdialog.providers.openai_compat.stt import OpenAICompatSTT

        return OpenAICompatSTT(config, name=name)
    if config.stage == "tts":
        if config.kind == "elevenlabs":
            from voxdialog.providers.elevenlabs import ElevenLabsTTS

            return ElevenLabsTTS(config, name=name)
        if config.kind not in ("anthropic", "webhook"):
            from voxdialog.providers.openai_compat.tts import OpenAICompatTTS

            return OpenAICompatTTS(config, name=name)
    raise ProviderConfigError(f"provider '{name}': kind {config.kind} cannot do {config.stage}")


class ProviderAssembly:
    """Turns lists of provider names into stages (built once, shared by every session).

    Args:
        registry: The local models (``silero``, ``whisper``, ``piper`` and their aliases).
        providers: Remote providers declared in settings, by name.
        chain: How chains call their providers.
    """

    def __init__(
        self,
        registry: ProviderRegistry,
        providers: Mapping[str, ProviderSettings],
        chain: ChainSettings,
    ) -> None:
        self._registry = registry
        self._providers = providers
        self._chain = chain
        self._built: dict[tuple[str, str], Any] = {}
        #: Every chain built, for health reports and metrics.
        self.chains: list[Any] = []

    def _one(self, stage: str, name: str) -> Any:
        key = (stage, name)
        if key in self._built:
            return self._built[key]
        config = self._providers.get(name)
        if config is not None:
            if config.stage != stage:
                raise ProviderConfigError(
                    f"provider '{name}' is a {config.stage} provider, not {stage}"
                )
            built = _remote(name, config)
        else:
            try:
                built = getattr(self._registry, stage)(name)
            except UnknownProvider as e:
                raise ProviderConfigError(f"unknown {stage} provider '{name}'") from e
        self._built[key] = built
        return built

    def _chain_of(self, stage: str, names: Sequence[str]) -> Any:
        from voxdialog.providers.chain import CallPolicy, FallbackLLM, FallbackSTT, FallbackTTS

        members = [self._one(stage, name) for name in names]
        if len(members) == 1:
            return members[0]
        policy = CallPolicy.from_settings(self._chain)
        kinds = {"llm": FallbackLLM, "stt": FallbackSTT, "tts": FallbackTTS}
        chain = kinds[stage](members, policy=policy, name="+".join(names))
        self.chains.append(chain)
        return chain

    async def aclose(self) -> None:
        """Close the remote providers' pooled connections."""
        for provider in self._built.values():
            await close_provider(provider)

    def llm(self, names: Sequence[str], routes: Sequence[RouteRule] = ()) -> LLM | None:
        """The LLM chain for ``names`` (None when empty), with smart routing rules."""
        if not names:
            return None
        default: LLM = self._chain_of("llm", names)
        if not routes:
            return default
        from voxdialog.providers.routing import RoutedLLM

        return RoutedLLM(default, [(rule, self._chain_of("llm", rule.llm)) for rule in routes])

    def stt(self, names: Sequence[str]) -> STT:
        """The STT chain for ``names``; providers that declare ``languages`` go first for them."""
        if not names:
            raise ProviderConfigError("an agent needs at least one STT provider")
        stt: STT = self._chain_of("stt", names)
        preferred: dict[str, list[str]] = {}
        for name in names:
            config = self._providers.get(name)
            for language in config.languages if config else ():
                preferred.setdefault(language.lower(), []).append(name)
        if not preferred:
            return stt
        from voxdialog.providers.routing import LanguageRoutedSTT

        by_language = {
            language: self._chain_of("stt", [*first, *(n for n in names if n not in first)])
            for language, first in preferred.items()
        }
        return LanguageRoutedSTT(stt, by_language)

    def tts(self, names: Sequence[str]) -> TTS:
        """The TTS chain for ``names``."""
        if not names:
            raise ProviderConfigError("an agent needs at least one TTS provider")
        tts: TTS = self._chain_of("tts", names)
        return tts
