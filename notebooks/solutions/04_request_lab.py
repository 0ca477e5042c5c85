"""Worked solutions for the challenges of 04_request_lab.

By clicks: challenge 1, run_id -> "nonexistent", Send (404); challenge 2, run_id -> "live run",
timestamp -> "seconds as float", Send (200, stored timestamp 0). The same through code:
"""

import time

#: Challenge 1: a well-formed run id that no run has; every other field stays valid.
CHALLENGE_404 = {"run_id": "0123456789abcdef0123456789abcdef"}


def challenge_wrong_timestamp(live_run_id: str) -> dict:
    """Challenge 2: seconds (time.time()) where MLflow expects integer milliseconds."""
    return {"run_id": live_run_id, "timestamp": time.time()}


def solve_by_clicks(lab) -> None:
    """Both challenges with the lab's own quick-choice buttons and the Send button."""
    lab.field("run_id").choice_buttons["nonexistent"].click()
    lab.send_button.click()
    lab.field("run_id").choice_buttons["live run"].click()
    lab.field("timestamp").choice_buttons["seconds as float"].click()
    lab.send_button.click()
