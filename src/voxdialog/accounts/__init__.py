"""Accounts: sign-up, sign-in, tokens and the caller behind a credential."""
