"""Facts more than one side of the project names, each defined once here.

Standard library only and importing nothing of the project, so every side may import it:
the Pulumi program (`components/`, `hosting/`), both Lambda zips (each carries `shared/`
beside its own packages: `components.proxy_api.lambda_code`), the local runtime, the batch
CLI, the operator CLIs (`admin/`) and the benchmarks. The serving image does not carry it,
since nothing it runs names these facts; an image that needed one would copy `shared/` in
(serving/Dockerfile, `serving.image.CONTEXT_FILES` and .dockerignore, kept in step by
tests/container/test_image_tag.py).

- `api`: the HTTP API's routes, stages, access headers and payload limit.
- `labels`: the folder of each model version's labels files.
- `log_levels`: what the proxy's `LOG_LEVEL` may be.
- `metrics`: the namespace and dimensions of the proxy's per-variant metrics.
- `predictions`: the predictions table's key schema.
- `registry`: a model archive's name, and where a stack's artifact bucket keeps each
  model version.
- `serverless`: the memory sizes SageMaker Serverless offers.
- `stats`: the one percentile rule of every report and benchmark.
- `variants`: the model variants' rules.

The one exception is the CrossGuard policy pack (`policy/rules.py`): it runs alone in a
virtualenv of its own, with no project package importable, so it keeps copies that
tests/policy/test_rules.py holds equal.
"""
