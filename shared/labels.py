"""Where each model version's labels are kept: `<MODEL_LABELS_DIR>/<version>.json`, a JSON
array in the model's output order.

The same folder name everywhere: in each Lambda zip beside its packages (the stack writes
it, `components/proxy_api.py`; the proxy reads it, `proxy/labels.py`), in the batch
bucket beside the outcomes (`components/batch_pipeline.py`), in the local runtime's data
directory and beside a local batch run's outcomes (`batch/labels.py`).
"""

from __future__ import annotations

MODEL_LABELS_DIR = "model_labels"
