"""The dashboard at ``/`` in a real browser: Debian's headless Chromium driven by Playwright.

A real API process and a worker process run jobs against the loopback index (two succeed, one
fails on a metadata 403); the page, opened from the API, must render them: the recent-jobs
table, the failures-by-code chart, the top failing packages and the upstream status counts.
A screenshot is checked with Pillow for what a person would see (a styled page, and the chart's
bar colour inside the chart). With authentication on, the page asks for a token and then shows
that client's jobs only. The browser may talk to the API's origin and nothing else.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from tests.indexserver import IndexServer
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.processes import find_executable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 1000}
RENDER_TIMEOUT_MS = 20_000
# The page's header bar (#24292f in dashboard.css): proof the style sheet was applied.
HEADER_RGB = (0x24, 0x29, 0x2F)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; without it the tests fail, naming the install command."""
    executable = find_executable(CHROMIUM, package="chromium")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only with a browser

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageWatch:
    """A fresh page that records console errors, uncaught exceptions and every request URL."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watch(browser: Any) -> Iterator[PageWatch]:
    page = PageWatch(browser)
    try:
        yield page
    finally:
        page.close()


def run(cluster: Cluster, requirement: str, headers: dict[str, str] | None = None) -> Any:
    response = cluster.submit({"requirements": [requirement]}, headers=headers)
    assert response.status_code in (200, 202), response.text
    job_id = response.json()["id"]
    until = time.monotonic() + 60
    while time.monotonic() < until:
        document = cluster.http.get(f"/jobs/{job_id}", params={"wait": 10}, headers=headers).json()
        if document["status"] in ("succeeded", "failed", "cancelled"):
            assert_not_internal(document)
            return document
    pytest.fail(f"job {job_id} did not end:\n{cluster.logs()}")


def wait_listed(cluster: Cluster, count: int, headers: dict[str, str] | None = None) -> None:
    """The worker lists a job just after its terminal write: wait until ``count`` are."""
    until = time.monotonic() + 10
    while time.monotonic() < until:
        jobs = cluster.http.get("/diagnostics/recent", headers=headers).json()["jobs"]
        if len(jobs) >= count:
            return
        time.sleep(0.1)
    pytest.fail(f"fewer than {count} jobs were listed:\n{cluster.logs()}")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def count_pixels(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 8) -> int:
    """How many pixels of ``image`` are ``rgb`` (give or take antialiasing)."""
    masks = [
        band.point(lambda v, t=target: 255 if abs(v - t) <= tolerance else 0)
        for band, target in zip(image.convert("RGB").split(), rgb, strict=True)
    ]
    both = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2])
    return both.histogram()[255]


def assert_same_origin_only(watch: PageWatch, base_url: str) -> None:
    outside = [url for url in watch.requests if not url.startswith(base_url + "/")]
    assert not outside, f"the page requested other origins: {outside}"
    assert not watch.errors, f"the page logged errors: {watch.errors}"


def assert_screenshot_shows_the_chart(page: Any, path: Path) -> None:
    """What a person would see: a styled page, and the bar's colour inside the chart only."""
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    shot.save(path)
    assert len(shot.getcolors(1_000_000) or []) > 50, "the page looks blank"
    assert shot.getpixel((5, 5)) == HEADER_RGB, "the style sheet is missing"
    box = page.locator("#failures-chart").bounding_box()
    bar = page.locator("#failures-chart rect.bar").first
    bar_box = bar.bounding_box()
    assert box is not None and bar_box is not None
    chart = shot.crop(
        (
            int(box["x"]),
            int(box["y"]),
            int(box["x"] + box["width"]),
            int(box["y"] + box["height"]),
        )
    )
    bar_rgb = hex_rgb(bar.get_attribute("fill") or "")
    # Most of the drawn bar shows in its colour, and the colour is the bar's, not the
    # page's: above the chart (header, tiles) there is none of it.
    assert count_pixels(chart, bar_rgb) >= 0.8 * bar_box["width"] * bar_box["height"] > 500
    above = shot.crop((0, 0, shot.width, int(box["y"])))
    assert count_pixels(above, bar_rgb) == 0


class TestDashboard:
    def test_the_page_shows_jobs_failures_packages_and_upstream_counts(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch, tmp_path: Path
    ) -> None:
        """Two successes and a metadata-403 failure appear in every panel and in the picture."""
        index_server.inject("/corp/files/slowpoke-*", status=403)
        cluster.serve("--no-worker")
        cluster.worker()
        cluster.wait_ready()
        flask = run(cluster, "flask")
        click = run(cluster, "click")
        blocked = run(cluster, "slowpoke")
        assert (flask["status"], click["status"]) == ("succeeded", "succeeded")
        assert blocked["status"] == "failed"
        assert blocked["failure"]["kind"] == "metadata_error"
        wait_listed(cluster, 3)

        page = watch.page
        page.goto(f"{cluster.base_url}/?refresh=2")
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_selector("#jobs tbody tr:nth-child(3)", timeout=RENDER_TIMEOUT_MS)

        rows = page.locator("#jobs tbody tr")
        ids = [rows.nth(i).get_attribute("data-job-id") for i in range(rows.count())]
        assert ids == [blocked["id"], click["id"], flask["id"]]
        failing = rows.nth(0).locator("td")
        assert failing.nth(1).inner_text() == "failed"
        assert failing.nth(3).inner_text() == "slowpoke"
        assert failing.nth(4).inner_text() == "metadata_error"
        assert rows.nth(2).locator("td").nth(1).inner_text() == "succeeded"
        assert rows.nth(2).locator("td").nth(3).inner_text() == "flask"
        assert rows.nth(2).locator("td").nth(2).inner_text().endswith(("ms", " s"))

        bars = page.locator("#failures-chart rect.bar")
        assert bars.count() == 1
        assert bars.nth(0).get_attribute("data-code") == "metadata_unavailable"
        assert bars.nth(0).get_attribute("data-count") == "1"
        assert page.locator("#legend li").inner_text().startswith("metadata_unavailable")
        assert page.locator("#packages tbody").inner_text().split() == ["slowpoke", "1"]

        corp = page.locator("#upstream tbody tr[data-index=corp]")
        counts = {
            int(cell.get_attribute("data-status")): int(cell.inner_text())
            for cell in corp.locator("td[data-status]").all()
        }
        assert counts[403] >= 1
        assert counts[200] >= 3
        assert page.locator(".tile.succeeded .count").inner_text() == "2"

        assert_screenshot_shows_the_chart(page, tmp_path / "dashboard.png")

        # The page keeps itself current: a new job shows up without a reload.
        again = run(cluster, "blinker")
        page.wait_for_selector(
            f"#jobs tbody tr[data-job-id='{again['id']}']", timeout=RENDER_TIMEOUT_MS
        )
        assert_same_origin_only(watch, cluster.base_url)

    def test_with_authentication_the_page_asks_for_a_token(
        self, cluster: Cluster, watch: PageWatch
    ) -> None:
        """On a 401 the page shows a token form; with Alice's token it shows Alice's job only."""
        env = {"RESOLVD_AUTH_TOKENS_ENV": "DASH_TOKENS", "DASH_TOKENS": "alice:tok-a bob:tok-b"}
        cluster.serve(env=env)
        cluster.wait_ready()
        alice = {"Authorization": "Bearer tok-a"}
        bob = {"Authorization": "Bearer tok-b"}
        alices = run(cluster, "click", headers=alice)
        run(cluster, "blinker", headers=bob)
        wait_listed(cluster, 1, headers=alice)
        wait_listed(cluster, 1, headers=bob)
        assert cluster.http.get("/").status_code == 200
        unauthenticated = cluster.http.get("/diagnostics/recent")
        assert unauthenticated.status_code == httpx.codes.UNAUTHORIZED

        page = watch.page
        page.goto(f"{cluster.base_url}/")
        page.wait_for_selector("body[data-state=needs-token]", timeout=RENDER_TIMEOUT_MS)
        assert page.locator("#token-form").is_visible()
        page.fill("#token", "wrong")
        page.click("#token-form button[type=submit]")
        page.wait_for_function(
            "document.getElementById('token-reason').textContent.includes('refused')",
            timeout=RENDER_TIMEOUT_MS,
        )
        assert page.locator("#token-form").is_visible()
        page.fill("#token", "tok-a")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        rows = page.locator("#jobs tbody tr")
        assert rows.count() == 1
        assert rows.nth(0).get_attribute("data-job-id") == alices["id"]
        assert page.evaluate("sessionStorage.getItem('resolvd.token')") == "tok-a"
        # The browser's only 401s were the first load and the wrong token.
        watch.errors = [e for e in watch.errors if "401" not in e]
        assert_same_origin_only(watch, cluster.base_url)
