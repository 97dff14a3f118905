"""Keys, tokens and secrets."""
