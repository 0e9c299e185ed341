"""Helpers shared by the test areas (importable because pytest puts ``tests/`` on sys.path)."""
