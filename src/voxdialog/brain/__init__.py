"""Brains decide what to say: the built-in task assistant now, LLM chains later."""
