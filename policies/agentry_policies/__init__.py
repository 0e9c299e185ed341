"""Agentry package."""
