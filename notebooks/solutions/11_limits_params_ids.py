"""Worked solution for 11_limits_params_ids: the largest chunk log-batch accepts.

MAX_METRICS_PER_BATCH in mlflow.utils.validation (printed in the notebook) is 1000 on MLflow 3.17.2,
so 2 500 points take three requests.
"""

SIZE = 1000
