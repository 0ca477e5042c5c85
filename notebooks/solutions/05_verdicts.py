"""Worked solution for the exercise of 05_verdicts: the kit's verdict on three new claims.

A: MLflow stores a negative step (200), so a claim of 400 is not confirmed.
B: 400, and MLflow's message names the metric name "loss?": confirmed.
C: 400 as claimed, but MLflow reports a missing run_id, not the broken JSON: right status, other cause.
"""

PREDICTIONS = {"A": "not confirmed", "B": "confirmed", "C": "right status, other cause"}
