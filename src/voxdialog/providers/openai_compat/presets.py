"""Default base URLs of the provider kinds that speak the OpenAI wire protocol."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from voxdialog.settings import ProviderSettings

#: Where each kind listens unless ``base_url`` says otherwise (``openai_compatible`` has none).
PRESET_BASE_URLS: Mapping[str, str] = MappingProxyType(
    {
        "openai": "https://api.openai.com/v1",
        "xai": "https://api.x.ai/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "groq": "https://api.groq.com/openai/v1",
        "ollama": "http://127.0.0.1:11434/v1",
        "vllm": "http://127.0.0.1:8000/v1",
        "lmstudio": "http://127.0.0.1:1234/v1",
        "speaches": "http://127.0.0.1:8000/v1",
        # Not OpenAI-compatible, but it resolves the same way (its paths start with /v1).
        "elevenlabs": "https://api.elevenlabs.io",
    }
)


def resolve_base_url(settings: ProviderSettings) -> str:
    """The base URL to call: ``settings.base_url`` if set, else the kind's preset.

    Args:
        settings: The provider's settings.

    Returns:
        The URL without a trailing slash, ready for ``+ "/chat/completions"``.

    Raises:
        ValueError: The kind has no preset (``openai_compatible``) and no ``base_url`` is set.
    """
    url = settings.base_url or PRESET_BASE_URLS.get(settings.kind)
    if not url:
        raise ValueError(f"provider kind {settings.kind!r} needs a base_url")
    return url.rstrip("/")
