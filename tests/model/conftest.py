"""The packaging tests check what they build against the serving side's handler, on the
tiny stand-in model of tests/serving/conftest.py."""

from tests.serving.conftest import handler, tiny_model_dir  # noqa: F401
