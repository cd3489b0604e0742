"""Deterministic orchestration: one workflow per module, no I/O."""
