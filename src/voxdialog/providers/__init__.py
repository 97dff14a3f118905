"""Stage providers (VAD, STT, TTS, LLM) behind small Protocols, and the registry that builds them."""
