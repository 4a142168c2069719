"""Kernel tests use the fixtures of ``yiwang.testing`` (loaded through its pytest11 entry point)."""
