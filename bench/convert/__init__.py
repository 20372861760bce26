"""Checkpoint conversion from other layouts (hzhupku/IFA release, mmsegmentation)."""
