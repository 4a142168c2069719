"""Kernel tests use the fixtures of ``yiwang.testing`` (loaded through its pytest11 entry point),
including the log guard: no raw identity or mobile number in any log record."""
