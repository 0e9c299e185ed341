"""The house tests import ``surface`` from this folder."""
