"""`python -m local` starts, says where it is, and stops cleanly on Ctrl-C and SIGTERM."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from local.process import local_runtime

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ready_then_clean_shutdown(model_artifact: Path, sig):
    with local_runtime(model_artifact) as runtime:
        output = runtime.output
        assert re.search(r"^Ready: open http://127\.0\.0\.1:\d+ in a browser", output, re.M)
        assert "UNTRAINED MODEL" in output, "random weights are announced loudly"
        # Paths as typed here: the archive under the working directory, relative.
        assert re.search(r"^Model\s+build/test-cache/model-\S+\.tar\.gz \(", output, re.M)
        model_url = re.search(r"^SageMaker\s+(http://\S+)", output, re.M).group(1)
        assert httpx.get(f"{model_url}/ping").status_code == 200
        assert httpx.get(runtime.site_url).status_code == 200

        assert runtime.stop(sig) == 0
        assert runtime.lines[-1] == "Stopped."
        assert "Traceback" not in runtime.output
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{model_url}/ping", timeout=2)
        with pytest.raises(httpx.TransportError):
            httpx.get(runtime.site_url, timeout=2)
