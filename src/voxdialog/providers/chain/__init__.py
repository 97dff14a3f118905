"""Provider chains: FallbackLLM, FallbackSTT and FallbackTTS fail over behind the same Protocols.

A chain tries its providers in order. Each attempt has a timeout (for a stream: until its first
piece of content), retryable errors may be retried with jittered backoff, and a circuit breaker per
provider skips one that keeps failing until a background probe (or one trial call) finds it well.
A stream fails over only before its first piece reached the caller, so a user never hears two
answers spliced together or a voice that changes mid-sentence.

The modules: ``policy`` (CallPolicy), ``core`` (ProviderChain, the retries, breakers and
failover), ``fallbacks`` (the three chains), ``streams`` (opening and closing provider
streams) and ``errors`` (ChainExhausted).
"""

from voxdialog.providers.chain.core import ProviderChain, ProviderHealth, Sleep
from voxdialog.providers.chain.errors import ChainExhausted
from voxdialog.providers.chain.fallbacks import PING_REQUEST, FallbackLLM, FallbackSTT, FallbackTTS
from voxdialog.providers.chain.policy import CallPolicy

__all__ = [
    "PING_REQUEST",
    "CallPolicy",
    "ChainExhausted",
    "FallbackLLM",
    "FallbackSTT",
    "FallbackTTS",
    "ProviderChain",
    "ProviderHealth",
    "Sleep",
]
