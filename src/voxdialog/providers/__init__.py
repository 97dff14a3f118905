"""Stage providers (VAD, STT, TTS, LLM) behind small Protocols, and their registry."""
