"""Root of the suite: pytest puts this folder on sys.path, so ``support`` is importable."""
