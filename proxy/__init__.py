"""The Lambda between API Gateway (HTTP API, payload 2.0) and the SageMaker endpoint.

Standard library and boto3 only: the Lambda runtime provides both, so the deployment zip is
this package and, beside it, `shared/` (the constants every side names). The handler string
is `proxy.handler.handler`.

A request, in the order it meets the modules:

- `handler`: the Lambda entry; at import, the container's init (config, logging, client).
- `app`: `PredictProxy`, one event in, one response out, one log line; routes
  `/api/predict`, `/api/feedback` and `/api/labels`.
- `access`: who may call: CloudFront's origin header, or a program's API key.
- `variants`: which model variant answers (`VARIANTS`, sticky per `x-client-id`).
- `predictions`: the record of each prediction and the feedback on it, in DynamoDB
  (`predictions_sqlite`: a local SQLite file, never loaded on Lambda).
- `feedback`: the feedback and labels routes; `labels`: each model version's labels
  (`MODEL_LABELS_DIR`).
- `metrics`: per-variant CloudWatch metrics in the log line (Embedded Metric Format).
- `api_keys`: the keys' stores (SSM, a local file), their cache, and the CLI
  `python -m proxy.api_keys`; imported at the first request that carries a key.
- `request`: what the event carries: the method, and the image, validated and sniffed.
- `sagemaker`: `InvokeEndpoint` with budgeted retries, and what each failure means.
- `responses`: `ApiError`, the error family, and every response body and header.
- `config`: the environment variables, read once; `logs`: JSON lines with per-request keys.

Not on the request path: `report` (`python -m admin.report`, per-variant accuracy from the
records) and `api_keys`' CLI.
"""
