"""Helpers the browser tests share: driving the page, reading what it did, and measuring."""

from __future__ import annotations

import json
from pathlib import Path

from local.process import LocalRuntime

RESULT_TIMEOUT_MS = 30_000
PREDICT = "**/predict"

# Recorded from the first moment of every page, before its own scripts run (an init
# script is injected by the browser, so the page's CSP does not apply to it).
_PERFORMANCE_LOG = """
window.__layoutShifts = [];
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__layoutShifts.push({ value: entry.value, time: entry.startTime });
  }
}).observe({ type: "layout-shift", buffered: true });
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__longTasks.push({ duration: entry.duration, time: entry.startTime });
  }
}).observe({ type: "longtask", buffered: true });
"""


def watch_performance(page) -> None:
    page.add_init_script(_PERFORMANCE_LOG)


def now(page) -> float:
    return page.evaluate("performance.now()")


def layout_shift_since(page, start: float) -> float:
    """The sum of every layout-shift entry since `start` (input or not: the stricter sum)."""
    return page.evaluate(
        "start => window.__layoutShifts.filter(e => e.time >= start)"
        ".reduce((sum, e) => sum + e.value, 0)",
        start,
    )


def longest_task_since(page, start: float) -> float:
    return page.evaluate(
        "start => Math.max(0, ...window.__longTasks.filter(e => e.time >= start)"
        ".map(e => e.duration))",
        start,
    )


def is_predict_post(request) -> bool:
    return request.url.endswith("/predict") and request.method == "POST"


def is_predict_response(response) -> bool:
    return is_predict_post(response.request)


def count_predict_posts(page) -> list:
    """A list that fills with every POST /predict the page sends from now on."""
    sent: list = []
    page.on("request", lambda request: sent.append(request) if is_predict_post(request) else None)
    return sent


def hold_predictions(page) -> list:
    """Route POST /predict into a list of held routes; the test decides when they go on."""
    held: list = []
    page.route(PREDICT, lambda route: held.append(route))
    return held


def wait_until_held(page, held: list, count: int = 1) -> None:
    for _ in range(200):
        if len(held) >= count:
            return
        page.wait_for_timeout(25)
    raise AssertionError("the page sent no request")


def fulfill_json(route, status: int, body: dict, **headers: str) -> None:
    """Answer a held request as the API would, on the site's own origin (so no CORS)."""
    route.fulfill(
        status=status,
        body=json.dumps(body),
        headers={"content-type": "application/json", **headers},
    )


def record_network(page) -> list[dict]:
    """A list that fills with every request the page's network stack sends from now on, as
    DevTools sees them: `{"method", "url", "type"}`. Unlike Playwright's `request` event,
    this includes CORS preflights (`OPTIONS`), which Chromium sends on its own."""
    sent: list[dict] = []
    session = page.context.new_cdp_session(page)
    session.on(
        "Network.requestWillBeSent",
        lambda event: sent.append(
            {
                "method": event["request"]["method"],
                "url": event["request"]["url"],
                "type": event.get("type"),
            }
        ),
    )
    session.send("Network.enable")
    return sent


def received_bytes(runtime: LocalRuntime, request_id: str) -> int:
    for line in reversed(runtime.lines):
        if line.startswith("{") and request_id in line:
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return record["bytes"]
    raise AssertionError(f"no proxy log line for request {request_id}")


def choose_file(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))


def wait_for_results(page) -> None:
    page.wait_for_selector("#results:not([hidden])", timeout=RESULT_TIMEOUT_MS)


def wait_for_error(page) -> str:
    """The error's title and message, once shown."""
    page.wait_for_selector("#error:not([hidden])", timeout=RESULT_TIMEOUT_MS)
    return f"{page.inner_text('#error-title')}\n{page.inner_text('#error-message')}"


def visible_text(page) -> str:
    return page.inner_text("body")


TOP_LABEL_IN_VIEW = """() => {
  const label = document.querySelector("#predictions .is-top .prediction-row");
  if (!label || !label.offsetParent) return false;
  const box = label.getBoundingClientRect();
  return box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def wait_for_top_label_in_view(page, timeout_ms: int = 2000) -> None:
    """The answer scrolls into view when it arrives (smoothly, so within a moment)."""
    page.wait_for_function(TOP_LABEL_IN_VIEW, timeout=timeout_ms)


def run_axe(page, axe_source: str) -> list[dict]:
    """axe-core's violations on the page as it is now. The library is evaluated through the
    DevTools protocol, which the page's CSP does not govern, so the CSP stays as served."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    return page.evaluate(
        """async () => {
          const results = await axe.run(document, { resultTypes: ["violations"] });
          return results.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ")),
          }));
        }"""
    )
