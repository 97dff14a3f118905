"""HTTP API: OpenAI-compatible audio and model routes, health, tokens."""
