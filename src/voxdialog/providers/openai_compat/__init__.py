"""Providers that speak the OpenAI HTTP API: chat completions, transcriptions and speech."""
