"""Worked solution of 14_beyond_400's exercise (tests feed it to the self-check)."""

#: runs/get is served for GET only (the 405's Allow header says: OPTIONS, HEAD, GET).
READ_METHOD = "GET"
#: The path had a typo; this is the one the REST API reference gives.
HISTORY_PATH = "/api/2.0/mlflow/metrics/get-history"
#: What a script needs: the JSON Content-Type, and no Origin (a script has no origin).
SCRIPT_HEADERS = {"Content-Type": "application/json"}
