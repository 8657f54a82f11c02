"""Jobs: documents, the store that keeps them, the queue, and the workers that run them.

A job is a ``JobDocument`` (what clients read) inside a ``JobRecord`` (plus owner, request
fingerprint and a version for compare-and-set), kept by a ``JobStore`` (Redis, or memory when
``resolvd serve`` runs without Redis) and handed to workers by a ``JobQueue`` (SAQ on Redis, or
an asyncio queue). ``JobRunner`` runs one job: it calls ``service.resolution.resolve_request``,
publishes progress, honours cancels and deadlines and records the outcome. Whoever ends a job
(the runner, the API, the queue giving up) ends it through ``lifecycle.finish_job``, which
counts it into the statistics exactly once. This
package may import ``service.resolution`` (and, to open the index client a worker shares between
its jobs, ``service.index``), ``service.diagnostics`` and ``service.settings``; it never imports
Litestar or ``service.api``.
"""

from service.jobs.backend import Backend, BackendChoice, BackendUnavailable, open_backend
from service.jobs.model import JobDocument, JobRecord, JobStatus
from service.jobs.queue import JobQueue, MemoryJobQueue, SaqJobQueue
from service.jobs.runner import JobRunner, ResolveFn, Resolver, open_resolver
from service.jobs.store import IdempotencyConflict, JobStore, MemoryJobStore, RedisJobStore
from service.jobs.worker import MemoryWorker, SaqWorker, Worker, make_worker, run_worker_process

__all__ = [
    "Backend",
    "BackendChoice",
    "BackendUnavailable",
    "IdempotencyConflict",
    "JobDocument",
    "JobQueue",
    "JobRecord",
    "JobRunner",
    "JobStatus",
    "JobStore",
    "MemoryJobQueue",
    "MemoryJobStore",
    "MemoryWorker",
    "RedisJobStore",
    "ResolveFn",
    "Resolver",
    "SaqJobQueue",
    "SaqWorker",
    "Worker",
    "make_worker",
    "open_backend",
    "open_resolver",
    "run_worker_process",
]
