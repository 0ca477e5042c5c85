"""Placeholder."""
STEPS: dict = {}
