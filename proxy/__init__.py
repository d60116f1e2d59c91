"""The Lambda between API Gateway (HTTP API, payload 2.0) and the SageMaker endpoint.

Standard library and boto3 only: the Lambda runtime provides both, so the deployment zip is
this package and, beside it, `shared/` (the constants every side names); it holds only
what the Lambda runs. The handler string is `proxy.handler.handler`.

A request, in the order it meets the modules:

- `handler`: the Lambda entry; at import, the container's init (config, logging, client).
- `app`: `PredictProxy`, one event in, one response out, one log line; routes
  `/api/predict`, `/api/feedback` and `/api/labels`.
- `access`: who may call: CloudFront's origin header, or a program's API key.
- `variants`: which model variant answers (`VARIANTS`, sticky per `x-client-id`).
- `predictions`: the record of each prediction and the feedback on it, in DynamoDB.
- `feedback`: the feedback and labels routes; `labels`: each model version's labels
  (`MODEL_LABELS_DIR`).
- `metrics`: per-variant CloudWatch metrics in the log line (Embedded Metric Format).
- `api_keys`: the key check, the SSM key store and its cache; imported at the first request
  that carries a key.
- `request`: what the event carries: the method, and the image, validated and sniffed.
- `sagemaker`: `InvokeEndpoint` with budgeted retries, and what each failure means.
- `responses`: `ApiError`, the error family, and every response body and header.
- `config`: the environment variables, read once; `logs`: JSON lines with per-request keys.
- `local_stores`: where a machine that runs the handler supplies its own stores for
  `PREDICTIONS_FILE` and `API_KEYS_FILE` (the local runtime; none on Lambda).

Not here: the operator's CLIs (`python -m admin.api_keys`, `python -m admin.report`) and
the local runtime's stores (`machine/`).
"""
