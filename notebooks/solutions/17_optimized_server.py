"""Worked solution for the exercise of 17_optimized_server.

`"step": "ten"` fails `_assert_intlike` on the kit's server: 400 INVALID_PARAMETER_VALUE. On the
optimized server that check is an `assert`, so it is gone: protobuf's parser gives up at `step`,
the handler ignores the parse error, and the server answers 200 (storing step 0).
"""

EXPECTED = {"kit": 400, "optimized": 200}
