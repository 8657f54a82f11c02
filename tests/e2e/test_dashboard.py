"""The dashboard at ``/`` and the job view at ``/jobs/{id}/page`` in a real browser: Debian's
headless Chromium driven by Playwright.

A real API process and a worker process run jobs against the loopback index (two succeed, one
fails on a metadata 403); the page, opened from the API, must render them: the recent-jobs
table, the failures-by-code chart, the top failing packages and the upstream status counts.
A screenshot is checked with Pillow for what a person would see (a styled page, and the chart's
bar colour inside the chart). With authentication on, the page asks for a token and then shows
that client's jobs only. The browser may talk to the API's origin and nothing else.

The job view is opened for the seed story's two jobs -- a version the mirror answers 403 for,
without a policy (the job fails) and under ``ignore_error_codes.metadata = [403]`` (it succeeds
on the older version) -- and must show what a person needs: the explanation, the hints with
their codes and settings, the fetch errors, the skipped version, working lock downloads. The
mirror block catalogue is read from the API and from the dashboard. With
``RESOLVD_SCREENSHOTS=<dir>`` the job view's screenshots are also saved there (the README's).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import PROJECTS, Cluster, assert_not_internal
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


def run(
    cluster: Cluster, requirement: str, headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    response = cluster.submit({"requirements": [requirement], **fields}, headers=headers)
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


def wait_for_page(page: Any, script: str, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Poll ``page.evaluate(script)`` until it is true. Playwright's ``wait_for_function``
    polls by ``eval`` inside the page, which the dashboard's CSP (``script-src 'self'``)
    refuses whenever the condition is not already true at the first check; ``evaluate``
    goes through the DevTools protocol, which the CSP does not govern."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never made {script!r} true")
        time.sleep(0.05)


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
        wait_for_page(
            page, "document.getElementById('token-reason').textContent.includes('refused')"
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


# The seed story's world: corp (a company mirror) answers 403 for flask 3.0.0's files, so the
# newest flask is blocked; click 8.2.0 is yanked, so every resolution passes over it.
SEED_PROJECTS = [
    *(project for project in PROJECTS if project.name != "click"),
    Project("click", [Release("8.1.7"), Release("8.2.0", yanked="broken wheel")]),
]
BLOCKED_FILES = "/corp/files/flask-3.0.0*"
SKIP_403 = {"indexes": [{"name": "corp", "ignore_error_codes": {"metadata": [403]}}]}
LOCKS = {
    "pylock": "pylock.toml",
    "requirements": "requirements.txt",
    "pip-report": "pip-report.json",
}
BAD_RGB = (0xC6, 0x28, 0x28)  # --bad in dashboard.css: the failed badge
OK_RGB = (0x1A, 0x7F, 0x37)  # --ok: the succeeded badge


def seed(index_server: IndexServer) -> None:
    """Serve the seed world as corp (replacing the plain one) with flask 3.0.0 blocked."""
    index_server.add_index(IndexSpec("corp", SEED_PROJECTS))
    index_server.inject(BLOCKED_FILES, status=403)


def screenshot(page: Any, name: str, tmp_path: Path) -> Image.Image:
    """The whole page as a person sees it; also saved under ``$RESOLVD_SCREENSHOTS``."""
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    shot.save(tmp_path / f"{name}.png")
    if target := os.environ.get("RESOLVD_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        # A 128-colour palette keeps the README's pictures small and the text crisp.
        shot.quantize(colors=128).save(Path(target) / f"{name}.png", optimize=True)
    return shot


def assert_badge(page: Any, shot: Image.Image, rgb: tuple[int, int, int]) -> None:
    """The status badge shows in its colour (and the style sheet is applied)."""
    box = page.locator("#status").bounding_box()
    assert box is not None
    badge = shot.crop(
        (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    )
    assert count_pixels(badge, rgb) >= 0.5 * box["width"] * box["height"]
    assert shot.getpixel((5, 5)) == HEADER_RGB


def open_job(watch: PageWatch, cluster: Cluster, job_id: str, state: str = "ready") -> Any:
    page = watch.page
    page.goto(f"{cluster.base_url}/jobs/{job_id}/page")
    page.wait_for_selector(f"body[data-state={state}]", timeout=RENDER_TIMEOUT_MS)
    return page


def blocked(cluster: Cluster, jobs: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """corp's catalogue once its entries count ``jobs`` jobs (recorded just after each job's
    terminal write)."""
    until = time.monotonic() + 10
    while True:
        response = cluster.http.get("/indexes/corp/blocked", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if sum(v["jobs"] for v in body["versions"]) >= jobs or time.monotonic() > until:
            return body
        time.sleep(0.1)


class TestJobView:
    def test_a_failed_job_says_why_and_what_to_change(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch, tmp_path: Path
    ) -> None:
        """Without a policy the 403 fails the job: the page shows the explanation, the hint's
        code with the setting to change (and a request fragment), and the fetch errors."""
        seed(index_server)
        cluster.serve()
        cluster.wait_ready()
        job = run(cluster, "flask")
        assert (job["status"], job["failure"]["kind"]) == ("failed", "metadata_error")

        page = open_job(watch, cluster, job["id"])
        assert page.locator("body").get_attribute("data-status") == "failed"
        assert page.locator("#status").text_content() == "failed"
        assert page.locator("#job-id").text_content() == job["id"]
        explanation = page.locator("#explanation").inner_text()
        assert (
            "Metadata for flask==3.0.0 could not be fetched from index 'corp' (403 Forbidden)"
            in explanation
        )
        hint = page.locator("#hints li[data-code=metadata_unavailable]")
        assert hint.is_visible()
        assert hint.locator("code.code").inner_text() == "metadata_unavailable"
        assert "Setting to change: ignore_error_codes.metadata" in hint.inner_text()
        assert json.loads(hint.locator("pre.request").inner_text()) == SKIP_403
        assert (
            hint.locator("pre.config").inner_text() == "ignore_error_codes = { metadata = [403] }"
        )
        group = page.locator("#fetch-errors tbody[data-index=corp][data-status='403']")
        assert group.locator("tr.group").inner_text() == "corp · 403 Forbidden · 1"
        cells = group.locator("tr[data-code=metadata_unavailable] td")
        assert [cells.nth(i).inner_text() for i in range(3)] == [
            "flask",
            "3.0.0",
            "metadata_unavailable",
        ]
        for hidden in ("#locks-section", "#packages-section", "#progress-section"):
            assert page.locator(hidden).is_hidden(), hidden
        assert_badge(page, screenshot(page, "job-failed", tmp_path), BAD_RGB)
        assert_same_origin_only(watch, cluster.base_url)

    def test_a_success_under_a_policy_shows_what_it_skipped_and_its_locks(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch, tmp_path: Path
    ) -> None:
        """Under ignore_error_codes.metadata = [403] the job succeeds on flask 2.3.3: the page
        lists the skipped 3.0.0 and the yanked click 8.2.0, filters the packages, and its three
        lock links download exactly what the API exports."""
        seed(index_server)
        cluster.serve()
        cluster.wait_ready()
        job = run(cluster, "flask", **SKIP_403)
        assert job["status"] == "succeeded"
        versions = {p["name"]: p["version"] for p in job["result"]["packages"]}
        assert versions == {"flask": "2.3.3", "click": "8.1.7", "blinker": "1.8.2"}

        page = open_job(watch, cluster, job["id"])
        assert page.locator("#status").text_content() == "succeeded"
        skipped = page.locator("#warnings tr[data-code=metadata_unavailable]")
        assert skipped.count() == 1
        assert (skipped.get_attribute("data-package"), skipped.get_attribute("data-version")) == (
            "flask",
            "3.0.0",
        )
        assert "403 Forbidden" in skipped.inner_text() and "corp" in skipped.inner_text()
        assert "Versions skipped under a policy (1)" in page.locator("#warnings").inner_text()
        yanked = page.locator("#warnings tr[data-code=yanked]")
        assert yanked.get_attribute("data-version") == "8.2.0"
        assert "Yanked versions passed over (1)" in page.locator("#warnings").inner_text()

        assert_badge(page, screenshot(page, "job-succeeded", tmp_path), OK_RGB)
        rows = page.locator("#packages tbody tr")
        assert [rows.nth(i).get_attribute("data-name") for i in range(rows.count())] == [
            "blinker",
            "click",
            "flask",
        ]
        assert page.locator("#packages thead").inner_text().split("\t")[0] == "Package"
        page.fill("#package-filter", "bli")
        visible = page.locator("#packages tbody tr:visible")
        assert visible.count() == 1 and visible.get_attribute("data-name") == "blinker"
        assert page.locator("#package-count").inner_text() == "1 of 3"
        page.fill("#package-filter", "")
        assert page.locator("#packages tbody tr:visible").count() == 3
        assert page.locator("#changes-section").is_hidden()  # no previous lock was given

        for format, filename in LOCKS.items():
            with page.expect_download() as info:
                page.click(f"#locks a[data-format={format}]")
            download = info.value
            assert download.suggested_filename == filename
            exported = cluster.http.get(f"/jobs/{job['id']}/lock", params={"format": format})
            assert Path(download.path()).read_text() == exported.text
            assert "2.3.3" in exported.text
        assert page.locator("#lock-error").is_hidden()
        assert_same_origin_only(watch, cluster.base_url)

    def test_a_job_resolved_against_a_lock_shows_its_changes(
        self, cluster: Cluster, watch: PageWatch
    ) -> None:
        """Re-resolved against an earlier job's lock with flask let go, the job lists what
        moved: flask upgraded, itsdangerous added."""
        cluster.serve()
        cluster.wait_ready()
        locked = run(cluster, "flask", constraints=["flask<3"])
        job = run(cluster, "flask", lock={"job": locked["id"]}, upgrade_packages=["flask"])
        assert job["status"] == "succeeded"
        page = open_job(watch, cluster, job["id"])
        changes = page.locator("#changes tbody tr")
        moved = {
            changes.nth(i).get_attribute("data-name"): changes.nth(i).inner_text().split("\t")
            for i in range(changes.count())
        }
        assert moved["flask"][:4] == ["flask", "2.3.3", "3.0.0", "upgraded"]
        assert moved["itsdangerous"][:4] == ["itsdangerous", "—", "2.2.0", "added"]
        assert len(moved) == 2
        assert_same_origin_only(watch, cluster.base_url)

    def test_markers_show_when_packages_have_them(self, cluster: Cluster, watch: PageWatch) -> None:
        """Packages of a universal lock carry ``markers``: the table gains an "Installed
        when" column. Served by rewriting a real job's document in the browser until
        universal locks land."""
        cluster.serve()
        cluster.wait_ready()
        job = run(cluster, "flask")
        for package in job["result"]["packages"]:
            package["markers"] = "sys_platform == 'linux'" if package["name"] == "blinker" else None
        watch.page.route(
            f"{cluster.base_url}/jobs/{job['id']}", lambda route: route.fulfill(json=job)
        )
        page = open_job(watch, cluster, job["id"])
        assert "Installed when" in page.locator("#packages thead").inner_text()
        blinker = page.locator("#packages tbody tr[data-name=blinker] td.markers")
        assert blinker.inner_text() == "sys_platform == 'linux'"
        flask = page.locator("#packages tbody tr[data-name=flask] td.markers")
        assert flask.inner_text() == "always"
        assert page.locator("#changes-section").is_hidden()  # no lock was given
        assert_same_origin_only(watch, cluster.base_url)

    def test_a_running_job_shows_live_progress_then_its_result(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch
    ) -> None:
        """While the job runs the page shows a progress bar fed by its event stream, and
        then the result, without a reload."""
        index_server.inject("/corp/files/slowpoke-*", delay=3)
        cluster.serve()
        cluster.wait_ready()
        response = cluster.submit({"requirements": ["slowpoke"]})
        job_id = response.json()["id"]
        page = open_job(watch, cluster, job_id)
        assert page.locator("body").get_attribute("data-status") in ("queued", "running")
        assert page.locator("#progress-bar").is_visible()
        page.wait_for_selector("body[data-status=running]", timeout=RENDER_TIMEOUT_MS)
        assert "deadline" in page.locator("#progress-text").inner_text()
        page.wait_for_selector("body[data-status=succeeded]", timeout=30_000)
        assert page.locator("#progress-section").is_hidden()
        assert page.locator("#packages tbody tr[data-name=slowpoke]").is_visible()
        assert sum(1 for url in watch.requests if url.endswith(f"/jobs/{job_id}/page")) == 1
        assert any(url.endswith(f"/jobs/{job_id}/events") for url in watch.requests)
        assert_same_origin_only(watch, cluster.base_url)


class TestBlockedCatalogue:
    def test_the_seed_story_in_the_catalogue_and_on_the_dashboard(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch, tmp_path: Path
    ) -> None:
        """flask 3.0.0, refused twice: once failing a job, once forcing one onto 2.3.3. The
        route counts both, the dashboard's table and sparkline show them, and the policy
        impact counts the job that succeeded only thanks to the policy."""
        seed(index_server)
        cluster.serve()
        cluster.wait_ready()
        assert run(cluster, "flask")["status"] == "failed"
        assert run(cluster, "flask", **SKIP_403)["status"] == "succeeded"
        body = blocked(cluster, 2)
        [entry] = body["versions"]
        assert (entry["package"], entry["version"], entry["status"]) == ("flask", "3.0.0", 403)
        assert (entry["jobs"], entry["forced"], entry["failed"]) == (2, 1, 1)
        assert entry["per_day"][-1] == 2
        assert body["policy_impact"] == [{"status": 403, "jobs": 1}]
        assert cluster.http.get("/indexes/elsewhere/blocked").status_code == 404

        page = watch.page
        page.goto(f"{cluster.base_url}/?window=7d")
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        row = page.locator(
            ".blocked-index[data-index=corp] tr[data-package=flask][data-version='3.0.0']"
        )
        assert [
            row.locator(f"td.{name}").inner_text() for name in ("jobs", "forced", "failed")
        ] == [
            "2",
            "1",
            "1",
        ]
        assert "403 Forbidden" in row.inner_text()
        bars = row.locator("svg.spark rect.bar")
        assert bars.count() == 8  # the window's days: 7 back and today
        assert bars.last.get_attribute("data-count") == "2"
        row.locator("svg.spark rect.hit").last.hover()
        assert page.locator("#tooltip").inner_text().endswith("flask==3.0.0 refused in 2 jobs")
        impact = page.locator("#impact tbody tr[data-index=corp][data-status='403']")
        assert impact.locator("td").nth(2).inner_text() == "1"
        page.mouse.move(0, 0)
        screenshot(page, "dashboard", tmp_path)
        assert_same_origin_only(watch, cluster.base_url)

    def test_the_catalogue_keeps_at_most_its_bound(
        self, cluster: Cluster, index_server: IndexServer
    ) -> None:
        """With limits.blocked_versions_per_index = 1 only the latest refusal is kept."""
        seed(index_server)
        index_server.inject("/corp/files/slowpoke-*", status=403)
        cluster.serve(env={"RESOLVD_LIMITS_BLOCKED_VERSIONS_PER_INDEX": "1"})
        cluster.wait_ready()
        assert run(cluster, "flask", **SKIP_403)["status"] == "succeeded"
        assert blocked(cluster, 1)["versions"][0]["package"] == "flask"
        assert run(cluster, "slowpoke")["status"] == "failed"
        # The write that adds an entry trims the oldest just after it: wait for both.
        until = time.monotonic() + 10
        body = blocked(cluster, 1)
        while [v["package"] for v in body["versions"]] != ["slowpoke"]:
            assert time.monotonic() < until, body
            time.sleep(0.1)
            body = blocked(cluster, 1)
        assert [(v["package"], v["version"], v["failed"]) for v in body["versions"]] == [
            ("slowpoke", "1.0", 1)
        ]
        assert (body["total"], body["max_versions"]) == (1, 1)

    def test_counts_are_fleet_wide_and_jobs_stay_private(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch
    ) -> None:
        """Bob reads the refusal Alice's job met (no job id, no client in it) but not her job:
        its page shows him nothing of it, and shows Alice everything."""
        seed(index_server)
        env = {"RESOLVD_AUTH_TOKENS_ENV": "DASH_TOKENS", "DASH_TOKENS": "alice:tok-a bob:tok-b"}
        cluster.serve(env=env)
        cluster.wait_ready()
        alice = {"Authorization": "Bearer tok-a"}
        bob = {"Authorization": "Bearer tok-b"}
        job = run(cluster, "flask", headers=alice, **SKIP_403)
        assert cluster.http.get("/indexes/corp/blocked").status_code == 401
        body = blocked(cluster, 1, headers=bob)
        assert [(v["version"], v["forced"]) for v in body["versions"]] == [("3.0.0", 1)]
        text = cluster.http.get("/indexes/corp/blocked", headers=bob).text
        assert job["id"] not in text and "alice" not in text
        assert cluster.http.get(f"/jobs/{job['id']}", headers=bob).status_code == 404

        page = open_job(watch, cluster, job["id"], state="needs-token")
        page.fill("#token", "tok-b")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("body[data-state=not-found]", timeout=RENDER_TIMEOUT_MS)
        assert "belongs to another client" in page.locator("#error").inner_text()
        assert page.locator("#job").is_hidden()
        assert "flask" not in page.locator("body").inner_text()
        page.click("#forget-token")
        page.fill("#token", "tok-a")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        assert page.locator("#status").text_content() == "succeeded"
        watch.errors = [e for e in watch.errors if "401" not in e and "404" not in e]
        assert_same_origin_only(watch, cluster.base_url)


class TestChartsPeopleRead:
    def test_the_window_labels_tooltips_and_keyboard(
        self, cluster: Cluster, index_server: IndexServer, watch: PageWatch
    ) -> None:
        """The window selector is in the URL both ways; axis labels are 12 px at the default
        size; each bar has a tooltip, and the keyboard reaches the chart and reads its bars."""
        index_server.inject("/corp/files/slowpoke-*", status=403)
        cluster.serve()
        cluster.wait_ready()
        assert run(cluster, "slowpoke")["status"] == "failed"
        wait_listed(cluster, 1)

        page = watch.page
        page.goto(f"{cluster.base_url}/?window=7d&refresh=3600")
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        assert page.locator("#window").input_value() == "7d"
        page.select_option("#window", "30d")
        wait_for_page(page, "location.search.includes('window=30d')", timeout_ms=5000)
        assert "refresh=3600" in page.evaluate("location.search")
        page.reload()
        page.wait_for_selector("body[data-state=ready]", timeout=RENDER_TIMEOUT_MS)
        assert page.locator("#window").input_value() == "30d"

        ticks = page.locator("#failures-chart text.tick")
        assert ticks.count() >= 4
        for i in range(ticks.count()):
            box = ticks.nth(i).bounding_box()
            assert box is not None and box["height"] >= 12, ticks.nth(i).inner_html()
        titles = page.locator("#failures-chart text.axis-title")
        assert [titles.nth(i).text_content() for i in range(2)] == [
            "Hour (local time)",
            "Failed jobs",
        ]

        bar = page.locator("#failures-chart rect.bar").first
        bar.hover()
        tooltip = page.locator("#tooltip")
        assert tooltip.is_visible()
        assert tooltip.inner_text().endswith("1 failed with metadata_unavailable")

        page.mouse.move(0, 0)
        page.locator("#window").focus()
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "failures-chart":
                break
        else:
            pytest.fail("Tab never reached the failures chart")
        page.keyboard.press("End")
        assert page.locator("#failures-chart rect.bar.active").count() == 1
        assert tooltip.inner_text().endswith("1 failed with metadata_unavailable")
        page.keyboard.press("Home")
        assert page.locator("#failures-chart rect.bar.active").count() == 1
        assert_same_origin_only(watch, cluster.base_url)
