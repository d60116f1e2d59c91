"""The proxy's CloudWatch metrics per variant: the proxy writes them in its log line
(`proxy/metrics.py`, Embedded Metric Format) and the stack's alarms and dashboard read them
(`components/monitoring.py`)."""

from __future__ import annotations

NAMESPACE = "ImageClassifier"
SERVICE_DIMENSION = "Service"
"""One value per stack: its proxy's function name."""
VARIANT_DIMENSION = "Variant"
