"""Image classifiers: packaging (``model.package``, ``model.finetune``), the SageMaker
handler (``model/code/inference.py``) and a local SageMaker-compatible server
(``model.serve``)."""

import os

# The packager runs ONNX Runtime too (export parity, int8 calibration): no telemetry from
# it either, for the reason the handler gives next to the same setting.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
