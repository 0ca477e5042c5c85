# ruff: noqa: E501  (exporter strings are kept byte for byte, long lines included)
"""curl commands exactly as the tools people copy them from write them, for tests/test_check.py.

Each string keeps its exporter's layout: option spellings, quoting ($'...' from Chromium),
line continuations, header case and order, and the extra headers browsers add. Only the URL's
origin ({base}) and the run id ({run_id}) are placeholders, filled per test.
"""

from __future__ import annotations

PATH = "/api/2.0/mlflow/runs/log-metric"

# Chromium (DevTools > Network > Copy > Copy as cURL (bash)): one header per line, cookies with
# -b, the body with --data-raw, $'...' when the body holds a quote.
CHROMIUM = r"""curl '{base}/api/2.0/mlflow/runs/set-tag' \
  -H 'Accept: */*' \
  -H 'Accept-Language: en-US,en;q=0.9' \
  -H 'Connection: keep-alive' \
  -H 'Content-Type: application/json' \
  -b 'mlflow-session=s3cr3t-cookie-value' \
  -H 'Origin: {base}' \
  -H 'Referer: {base}/' \
  -H 'Sec-Fetch-Dest: empty' \
  -H 'Sec-Fetch-Mode: cors' \
  -H 'Sec-Fetch-Site: same-origin' \
  -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' \
  -H 'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"' \
  -H 'sec-ch-ua-mobile: ?0' \
  -H 'sec-ch-ua-platform: "Linux"' \
  --data-raw $'{{"run_id":"{run_id}","key":"note","value":"it\'s done"}}'"""

# Firefox (Network > Copy Value > Copy as cURL (POSIX)): one line, -X POST, --data-raw.
FIREFOX = ("curl '{base}" + PATH + "' -X POST -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; "
           "rv:128.0) Gecko/20100101 Firefox/128.0' -H 'Accept: */*' -H 'Accept-Language: "
           "en-US,en;q=0.5' -H 'Accept-Encoding: gzip, deflate, br, zstd' -H 'Referer: {base}/' "
           "-H 'Content-Type: application/json' -H 'Origin: {base}' -H 'Connection: keep-alive' "
           "-H 'Sec-Fetch-Dest: empty' -H 'Sec-Fetch-Mode: cors' -H 'Sec-Fetch-Site: same-origin' "
           "-H 'Priority: u=4' --data-raw '{{\"run_id\":\"{run_id}\",\"key\":\"loss\","
           "\"value\":0.5,\"timestamp\":1700000000}}'")

# Postman (Code snippet > cURL): --location, --header, a pretty-printed --data body.
POSTMAN = """curl --location '{base}/api/2.0/mlflow/runs/log-metric' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer dapi0123456789abcdef' \\
--data '{{
    "run_id": "{run_id}",
    "key": "loss",
    "value": 0.5
}}'"""

# Insomnia (Copy as Curl): --request, --url, lower-case header names.
INSOMNIA = """curl --request POST \\
  --url {base}/api/2.0/mlflow/runs/log-batch \\
  --header 'content-type: application/json' \\
  --data '{{"run_uuid": "{run_id}", "metrics": [{{"key": "acc", "value": 0.9, "timestamp": 1700000000000, "step": 0}}]}}'"""

# Bruno (Generate Code > Shell - curl): the same httpsnippet layout.
BRUNO = """curl --request POST \\
  --url {base}/api/2.0/mlflow/runs/log-parameter \\
  --header 'content-type: application/json' \\
  --data '{{"run_id": "{run_id}", "key": "lr", "value": "0.01"}}'"""

# MLflow's REST API docs style: -X, -H, -d, the URL last.
MLFLOW_DOCS = ("curl -X POST -H 'Content-Type: application/json' -d '{{\"experiment_id\": "
               "\"{experiment_id}\", \"run_name\": \"docs-example\"}}' "
               "{base}/api/2.0/mlflow/runs/create")

# The article's first 400, as a curl user writes it: -d without a Content-Type header.
ARTICLE = ("curl -X POST {base}/api/2.0/mlflow/runs/log-metric -d '{{\"run_id\": \"{run_id}\", "
           "\"key\": \"accuracy\", \"value\": 0.95, \"timestamp\": 1700000000000}}'")

# A Python dict pasted as the body (str(payload) instead of json.dumps(payload)).
PYTHON_DICT = ("curl -sS -X POST '{base}/api/2.0/mlflow/runs/log-metric' -H 'Content-Type: "
               "application/json' --data-binary \"{{'run_id': '{run_id}', 'key': 'loss', "
               "'value': 0.5, 'timestamp': 1700000000000, 'step': 0}}\"")

EXPORTS = {"chromium": CHROMIUM, "firefox": FIREFOX, "postman": POSTMAN, "insomnia": INSOMNIA,
           "bruno": BRUNO, "mlflow-docs": MLFLOW_DOCS, "article": ARTICLE,
           "python-dict": PYTHON_DICT}
