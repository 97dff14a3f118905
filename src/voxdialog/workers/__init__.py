"""Serving on several cores: the supervisor, its workers and their shared session registry."""
