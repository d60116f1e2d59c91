"""`python -m local --inbox DIR`: a folder that works like the batch pipeline's S3 inbox.

Every image dropped into DIR is classified by the batch task code (`batch.runner`) against
the runtime's own model server, and lands in exactly one of `results/`, `review/` or
`failed/` under the outcomes folder, as `python -m batch run` writes them, and a line
says where. One thread polls the folder; a file still being written waits for the next
pass. A stop (the runtime's Ctrl-C or SIGTERM) lets the image in flight finish, gives up
its retries (it stays for the next start) and starts no other, as `batch run` does.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from batch import labels as model_labels
from batch.runner import Stop, local_classifier, process_new
from machine.artifact import shown
from pipeline.storage import LocalStorage
from proxy.config import load_config

POLL_SECONDS = 2.0
# A file changed more recently than this may still be being copied in.
SETTLE_SECONDS = 1.0


class InboxWatcher:
    """Classifies what arrives in `inbox` into `out`, until `stop()`.

    Reads the proxy's environment (the local runtime sets it before loading the handler):
    the classifier talks to the runtime's model server, with the proxy's review threshold
    and size limit, so a folder and the API judge an image alike.
    """

    def __init__(self, inbox: Path, out: Path, archive: Path) -> None:
        self.inbox = inbox
        self.out = out
        self.archive = archive
        self._stop = Stop()
        self._thread = threading.Thread(target=self._watch, name="inbox", daemon=True)

    def describe(self) -> str:
        return (
            f"Inbox      {shown(self.inbox)} (images put here are classified into "
            f"{shown(self.out)}/results, review or failed)"
        )

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        model_labels.save(self.out, self.archive)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _report(self, output: dict[str, Any]) -> None:
        if output["outcome"] == "failed":
            detail = output.get("code")
        else:
            detail = f"{output.get('label')}, {output.get('probability', 0.0):.3f}"
        print(f"inbox: {output['name']} -> {output['result_key']} ({detail})", flush=True)

    def _watch(self) -> None:
        source = LocalStorage(self.inbox, exclude=self.out)
        out = LocalStorage(self.out)
        config = load_config(os.environ)
        classifier = local_classifier(
            config.review_threshold, config.max_image_bytes, sleep=self._stop.sleep
        )
        while not self._stop.is_set():
            process_new(
                source,
                out,
                classifier,
                settle_seconds=SETTLE_SECONDS,
                workers=1,
                should_stop=self._stop.is_set,
                sleep=self._stop.sleep,
                report=self._report,
            )
            self._stop.wait(POLL_SECONDS)
