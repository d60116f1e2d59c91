"""What the first visit costs: bytes on the wire and requests, measured by the browser."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

FIRST_LOAD_BYTES = 60 * 1024
"""Everything but the sample photos (which are loaded on demand) must fit in 60 KB."""

TEXT_TYPES = ("text/html", "text/css", "text/javascript")

ENTRIES = """() => [
  ...performance.getEntriesByType("navigation"),
  ...performance.getEntriesByType("resource"),
].map((e) => ({ url: e.name, transfer: e.transferSize, size: e.decodedBodySize }))"""


def test_first_load_is_small_and_compressed(open_page, runtime):
    page = open_page(goto=False)
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(runtime.site_url, wait_until="networkidle")

    entries = page.evaluate(ENTRIES)
    site = [e for e in entries if "/samples/" not in e["url"]]
    samples = [e for e in entries if "/samples/" in e["url"]]
    transferred = sum(e["transfer"] for e in site)
    for entry in entries:
        print(f"{entry['transfer']:>7} {entry['size']:>7}  {entry['url']}")
    print(
        f"first load: {len(site)} requests, {transferred / 1024:.1f} KB transferred "
        f"({sum(e['size'] for e in site) / 1024:.1f} KB uncompressed); sample thumbnails: "
        f"{len(samples)} requests, {sum(e['transfer'] for e in samples) / 1024:.1f} KB"
    )
    assert transferred <= FIRST_LOAD_BYTES
    assert any(e["url"].endswith("/boot.js") for e in site)
    # The camera, the model's labels and their page come when asked for, not before.
    on_demand = ("/camera.js", "/knows.js", "/api/labels")
    assert not [e for e in entries if any(part in e["url"] for part in on_demand)]
    assert all("/samples/" in e["url"] and e["url"].endswith("-thumb.jpg") for e in samples)

    # The local server compresses text as CloudFront does (compress: True).
    for response in responses:
        kind = response.headers.get("content-type", "")
        if kind.startswith(TEXT_TYPES) and len(response.body()) > 1024:
            assert response.headers.get("content-encoding") == "gzip", response.url
