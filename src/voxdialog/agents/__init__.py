"""Agents: personas with their own provider chains, voice and turn-taking, stored per tenant."""
