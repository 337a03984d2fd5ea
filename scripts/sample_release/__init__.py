"""Deterministic sample release for the VibeData rehearsal and tests (see README.md)."""
