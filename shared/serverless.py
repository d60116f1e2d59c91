"""The memory sizes SageMaker Serverless offers: the model side records the smallest that
holds an archive (`model/memory.py`, `memory_mb_min`) and the stack refuses any other for an
endpoint (`components/inference_endpoint.py`)."""

from __future__ import annotations

SERVERLESS_MEMORY_STEP_MB = 1024
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
"""Every multiple of `SERVERLESS_MEMORY_STEP_MB` from 1024 to 6144."""
