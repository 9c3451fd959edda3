"""Tests of storage/ (mirroring the source tree)."""
