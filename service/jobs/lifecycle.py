"""How a job ends: ``finish_job`` applies the terminal transition and counts the job, once.

Whoever ends a job goes through here: the runner (a result, a failure, a deadline), the API (a
cancel, a job that could not be queued, a job the queue gave up on, found on a read) and the
queue's give-up hook. The store's compare-and-set lets one writer win; only the write that
changed the job counts it (``record_finished_job``), so a job never counts twice however many
writers race, and every finished job lands in the same statistics (the ones ``/metrics`` and
``/diagnostics/*`` read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from service.jobs.model import mark_given_up
from service.jobs.stats import StatsStore, record_finished_job
from service.jobs.store import JobStore, Transition, Updated

__all__ = ["finish_job", "give_up"]

logger = logging.getLogger(__name__)


async def finish_job(
    store: JobStore,
    stats: StatsStore | None,
    job_id: str,
    finish: Transition,
    *,
    upstream: Mapping[tuple[str, int], int] | None = None,
) -> Updated:
    """Apply ``finish`` (a terminal transition) to ``job_id`` and count the job if it changed.

    ``upstream`` counts the responses the job's fetches got, by (index, status). ``stats`` may
    be ``None`` only where nothing is counted (a runner built without statistics, in tests).
    """
    updated = await store.update(job_id, finish)
    if stats is not None and updated.changed and updated.record is not None:
        await record_finished_job(stats, updated.record, upstream)
    return updated


async def give_up(store: JobStore, stats: StatsStore, job_id: str, tries: int) -> None:
    """Fail ``job_id`` if it is still live: the queue will not run it again (``tries`` made)."""
    updated = await finish_job(store, stats, job_id, lambda record: mark_given_up(record, tries))
    if updated.changed:
        logger.warning("job %s failed: its worker stopped on each of its %d tries", job_id, tries)
