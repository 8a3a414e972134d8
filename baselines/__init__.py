"""Committed baselines of the pinned lanes (`<lane>.json`); see optconform/baseline.py."""
