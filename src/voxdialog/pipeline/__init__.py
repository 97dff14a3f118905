"""The per-session voice pipeline. Imports neither the web framework nor the database."""
