"""Tests of bot/ (mirroring the source tree)."""
