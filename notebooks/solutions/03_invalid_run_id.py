"""Worked solution for 03_invalid_run_id: the check that answers each mystery request first.

Read each request against the order of the server's checks: Content-Type, JSON parse (silent),
the handler's schema in field order, the store's metric rules, the run lookup.
"""

PREDICTIONS = {
    "A": "Content-Type",  # no header: refused before the body is read
    "B": "run_id",  # trailing comma: the silent parse gives {}, the first required field is run_id
    "C": "name",  # '%' in the key: the store checks the name before it looks the run up
    "D": "200",  # run_uuid is the old name of run_id; numeric strings are converted
}
