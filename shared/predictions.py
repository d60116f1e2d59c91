"""The predictions table's key schema: the stack creates the table with it
(`components/predictions_table.py`) and the proxy writes, updates and reads its items by
it (`proxy/predictions.py`)."""

from __future__ import annotations

PARTITION_KEY = "request_id"
TTL_ATTRIBUTE = "expires_at"
"""Unix seconds after which DynamoDB deletes the record (within a few days)."""
