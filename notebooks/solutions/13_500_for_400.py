"""Worked solution for 13_500_for_400: retry only transient failures of requests safe to repeat."""

DECISIONS = {
    "A": False,  # a 500 from a malformed request is deterministic: fix the request
    "B": True,   # no answer, and a point with explicit timestamp and step is stored once
    "C": False,  # runs/create is not safe to repeat: each call creates a run
    "D": True,   # a proxy's 503 is transient; the request is safe to repeat
    "E": False,  # a 400 names a mistake; the same bytes get the same 400
}
