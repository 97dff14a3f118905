"""Repositories: one module per aggregate, each call in its own short transaction."""
