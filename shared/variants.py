"""The model variants' rules: the stack checks config `variants` by them
(`components/model_variants.py`), the proxy checks `VARIANTS` by them (`proxy/variants.py`),
and `python -m admin.registry` names a stack's only variant `MAIN` when it has no
`variants` output."""

from __future__ import annotations

import re

MAIN = "main"
"""The variant that keeps the stack's endpoint name, the baseline the others are compared
with, and a stack's only one without config `variants`."""
MAX_VARIANTS = 4
"""Each variant is a SageMaker Serverless endpoint of its own, with its own cold starts and
its own share of the account's serverless concurrency."""
VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""A variant's name (whole, `fullmatch`): a metric dimension, a record attribute and part
of its endpoint's name, so short and plain."""
