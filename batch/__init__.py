"""The batch command line on one machine: folders of images classified by the same code
as the API (the batch Lambdas' tasks, `pipeline`), routed by outcome, reviewed by people,
exported back to training.

Modules: `runner` (`python -m batch run DIR`), `transform` (`run s3://... --on
sagemaker` and `attach`: a SageMaker Batch Transform job, with `stack_outputs`,
`manifest`, `transform_job` and `sorting`), `review`, `export`, `labels` (a model's
labels by its version). What runs in the cloud is `pipeline`'s: `tasks`, `handler`,
`workflow` and `storage` (S3 and local folders behind one interface); the command line
reuses them, with `machine`'s archive and model server in place of the endpoint.

Outcome files, one per image, `<folder>/<name>.json` (`name`: the image's path in the
folder, or its key without `inbox/`, or without the prefix a transform read), JSON
objects with `"schema": 1`:

- `results/` (`"outcome": "result"`, or `"reviewed"` once a person decided) and
  `review/` (`"outcome": "review"`): `name`, `request_id` (`batch-` and a hash of the
  image's place: its prediction record's id), `source` (`location`: `s3://bucket` or
  the folder; `key`, `etag`, `bytes`, `media_type`), `predictions`, `model` and
  `needs_review` exactly as the API answers them, `threshold`, `classified_at` (UTC ISO
  8601), `latency_ms` (null from a transform job, which times no single image); once
  reviewed, `reviewed`: `{"by", "at", "label", "verdict"}`
  (`verdict` `correct` when the label is the model's top one, else `wrong`).
- `failed/` (`"outcome": "failed"`): `name`, `request_id`, `source` (`location`, `key`,
  `etag`, `bytes`), `error` `{"code", "message", "status"}` (the API's code and sentence),
  `error_name` (the task error's name), `retryable`, `failed_at`, and for an unexpected
  error `detail`.

Beside them: `model_labels/<version>.json` (the model's labels, a JSON array, as
`proxy.labels` reads them; `run` writes it from the archive it serves) and, locally,
`summary.json` (docs/contracts.md), `model-server.log` and `.batch-outcomes` (the mark
that keeps a run over a parent folder from reading them as images).
"""
