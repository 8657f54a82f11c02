"""``GET /metrics``: a minimal Prometheus exposition of the job system.

Cluster-wide values are read at scrape time: jobs finished by status and the other fleet
counters from the statistics every finished job is counted into (``service.jobs.stats``), queue
depth and live workers from the queue and the job store. ``resolvd_jobs_submitted_total``
counts this API process's submissions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from service.api.problems import problem_spec
from service.builds import BuildStore, BuildTotals
from service.jobs.backend import Backend
from service.jobs.model import TERMINAL_STATUSES
from service.jobs.stats import parse_totals
from service.jobs.worker import READY_WINDOW_SECONDS

__all__ = ["MetricsController", "SubmissionMetrics"]


class SubmissionMetrics:
    """This process's submission counter, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.submitted = Counter(
            "resolvd_jobs_submitted",
            "Accepted POST /resolve requests by outcome (created a job, or deduplicated).",
            ["outcome"],
            registry=self.registry,
        )


class _Snapshot(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _fleet_families(totals: dict[str, int]) -> list[Metric]:
    """Counters every worker adds to in Redis, so any API replica reports the fleet's totals."""
    finished = CounterMetricFamily(
        "resolvd_jobs_finished",
        "Jobs that reached each terminal status (all processes).",
        labels=["status"],
    )
    by_status = dict.fromkeys(sorted(TERMINAL_STATUSES), 0)
    diagnostics = CounterMetricFamily(
        "resolvd_diagnostics",
        "Diagnostics in finished jobs, by code and severity.",
        labels=["code", "severity"],
    )
    by_index = CounterMetricFamily(
        "resolvd_diagnostics_by_index",
        "Diagnostics that name an index, by code, index and upstream status.",
        labels=["code", "index", "status"],
    )
    upstream = CounterMetricFamily(
        "resolvd_upstream_responses",
        "HTTP responses from package indexes, by index and status.",
        labels=["index", "status"],
    )
    failures = CounterMetricFamily(
        "resolvd_job_failures", "Failed jobs by failure kind.", labels=["kind"]
    )
    requests = CounterMetricFamily(
        "resolvd_upstream_requests", "HTTP requests sent to package indexes."
    )
    cache_hits = CounterMetricFamily(
        "resolvd_cache_hits", "Pages and metadata answered from the cache without a request."
    )
    duration = SummaryMetricFamily(
        "resolvd_job_duration_seconds", "Time from a job's start to its end."
    )
    count_and_sum = {"duration_count": 0, "duration_ms": 0}
    for kind, labels, count in parse_totals(totals):
        if kind == "job":
            by_status[labels[0]] = count
        elif kind == "diag":
            diagnostics.add_metric(list(labels), count)
        elif kind == "diag_index":
            by_index.add_metric(list(labels), count)
        elif kind == "upstream":
            upstream.add_metric(list(labels), count)
        elif kind == "failure":
            failures.add_metric(list(labels), count)
        elif kind == "requests":
            requests.add_metric([], count)
        elif kind == "cache_hits":
            cache_hits.add_metric([], count)
        elif kind in count_and_sum:
            count_and_sum[kind] = count
    for status, count in by_status.items():
        finished.add_metric([status], count)
    duration.add_metric(
        [],
        count_value=count_and_sum["duration_count"],
        sum_value=count_and_sum["duration_ms"] / 1000,
    )
    return [finished, diagnostics, by_index, upstream, failures, requests, cache_hits, duration]


def _build_families(totals: BuildTotals) -> list[Metric]:
    """Metadata builds across the fleet (``service.builds``): outcomes and time spent."""
    builds = CounterMetricFamily(
        "resolvd_builds",
        "Metadata builds by outcome (built, failed, reused: a known outcome served again).",
        labels=["outcome"],
    )
    for outcome, count in (("built", totals.built), ("reused", totals.reused)):
        builds.add_metric([outcome], count)
    builds.add_metric(["failed"], sum(totals.failed.values()))
    failures = CounterMetricFamily(
        "resolvd_build_failures", "Failed metadata builds by stage.", labels=["stage"]
    )
    for stage, count in sorted(totals.failed.items()):
        failures.add_metric([stage], count)
    duration = SummaryMetricFamily(
        "resolvd_build_duration_seconds", "Time from a build's start to its outcome."
    )
    duration.add_metric(
        [], count_value=totals.duration_count, sum_value=totals.duration_seconds_sum
    )
    return [builds, failures, duration]


class MetricsController(Controller):
    path = "/metrics"
    tags = ["operations"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/",
        operation_id="getMetrics",
        summary="Prometheus metrics",
        description=(
            "`resolvd_jobs_finished_total` (by terminal status, all processes), "
            "`resolvd_queue_depth`, `resolvd_workers_alive`, metadata builds "
            "(`resolvd_builds_total` by outcome, `resolvd_build_failures_total` by stage, "
            "`resolvd_build_duration_seconds`) and this process's "
            "`resolvd_jobs_submitted_total` by outcome."
        ),
        media_type=CONTENT_TYPE_LATEST,
        responses={
            401: problem_spec("Missing or unknown bearer token"),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def metrics(
        self,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        submissions: NamedDependency[SubmissionMetrics],
        builds: NamedDependency[BuildStore],
    ) -> Response[bytes]:
        depth = GaugeMetricFamily(
            "resolvd_queue_depth",
            "Jobs waiting for a worker.",
            value=await backend.queue.depth(),
        )
        workers = GaugeMetricFamily(
            "resolvd_workers_alive",
            f"Workers that wrote a heartbeat in the last {READY_WINDOW_SECONDS:g} s.",
            value=await backend.store.count_workers(READY_WINDOW_SECONDS),
        )
        snapshot = CollectorRegistry(auto_describe=True)
        families = [depth, workers, *_fleet_families(await backend.stats.totals())]
        families += _build_families(await builds.totals())
        snapshot.register(_Snapshot(families))
        body = generate_latest(snapshot) + generate_latest(submissions.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
