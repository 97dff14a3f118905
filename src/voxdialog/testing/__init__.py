"""Deterministic fakes, a manual clock and signal generators for tests and scripted sessions."""
