"""Where job documents live: a small ``JobStore`` interface with a Redis and an in-memory store.

Both stores keep the same promises, and ``tests/unit/jobs/test_store_contract.py`` runs one
suite against both:

- ``create`` is atomic with deduplication: an identical request (same client, same canonical
  fingerprint) whose job is still reusable gets that job back, and an ``Idempotency-Key`` is
  bound to the first request body it was used with (``IdempotencyConflict`` otherwise).
- ``update`` applies a pure transition from ``service.jobs.model`` with compare-and-set, so a
  job finishes exactly once and a cancelled job is never overwritten by a late result.
- ``watch`` wakes a waiter whenever a job's document changes (Redis pub/sub, or in-process
  events), so ``?wait=`` and the event stream never poll in a tight loop.
- ``beat``/``count_workers`` record worker liveness for ``/readyz`` and ``/metrics``;
  ``count_submission`` feeds the per-client rate limit. (Finished jobs are counted by
  ``service.jobs.lifecycle.finish_job`` into the statistics, not here.)

Redis keys: ``resolvd:job:<id>`` (msgspec JSON ``JobRecord``, expiring ``result_ttl`` seconds
after creation and again after the job ends), ``resolvd:dedupe:<client>:<fingerprint>``,
``resolvd:idem:<client>:<digest>``, ``resolvd:rate:<client>:<window>``, ``resolvd:workers``
(sorted set of worker heartbeats) and the channel ``resolvd:events:<id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol

import msgspec
from redis.exceptions import RedisError, WatchError

from service.jobs.model import JobRecord, is_reusable

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline, PubSub

__all__ = [
    "Created",
    "FinishedRecords",
    "IdempotencyConflict",
    "JobStore",
    "JobWatch",
    "MemoryJobStore",
    "RedisJobStore",
    "Transition",
    "Updated",
]

logger = logging.getLogger(__name__)

Transition = Callable[[JobRecord], JobRecord | None]

_PREFIX = "resolvd:"
_EVENTS_PATTERN = f"{_PREFIX}events:*"
_WORKERS_KEY = f"{_PREFIX}workers"
# Heartbeats older than this are pruned from the sorted set; readiness uses a shorter window.
_WORKER_RETENTION_SECONDS = 3600


class IdempotencyConflict(Exception):
    """The ``Idempotency-Key`` was already used with a different request body."""

    def __init__(self, job_id: str) -> None:
        super().__init__("Idempotency-Key was already used with a different request")
        self.job_id = job_id


class Created(NamedTuple):
    """The outcome of ``create``: the job to answer with, and whether it is new."""

    record: JobRecord
    created: bool


class Updated(NamedTuple):
    """The outcome of ``update``: the current record (``None`` if unknown), and if it changed."""

    record: JobRecord | None
    changed: bool


class JobWatch(Protocol):
    """A subscription to one job's changes, live from the moment it was entered."""

    async def wait(self, seconds: float) -> bool:
        """Wait for a change; True if one happened (since entering or the last ``wait``)."""
        ...


class JobStore(Protocol):
    """Job documents, deduplication, change notification and worker liveness."""

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> Created:
        """Store ``record`` unless an identical live request or idempotent retry already has a job.

        Raises ``IdempotencyConflict`` when ``idempotency_key`` is bound to another request.
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or ``None`` if it never existed or has expired."""
        ...

    async def update(self, job_id: str, transition: Transition) -> Updated:
        """Apply ``transition`` atomically (compare-and-set) and notify watchers if it changed."""
        ...

    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobWatch]:
        """Subscribe to changes of ``job_id``; enter before reading the job to miss nothing."""
        ...

    async def count_submission(self, client: str, window_seconds: int) -> int:
        """Count one submission by ``client`` in the current window; return the window's total."""
        ...

    async def beat(self, worker_id: str) -> None:
        """Record that ``worker_id`` is alive now."""
        ...

    async def count_workers(self, within_seconds: float) -> int:
        """How many workers beat within the last ``within_seconds``."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks."""
        ...


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _job_key(job_id: str) -> str:
    return f"{_PREFIX}job:{job_id}"


def _events_channel(job_id: str) -> str:
    return f"{_PREFIX}events:{job_id}"


def _dedupe_key(record: JobRecord) -> str:
    return f"{_PREFIX}dedupe:{record.client}:{record.fingerprint}"


def _idempotency_key(client: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{_PREFIX}idem:{client}:{digest}"


class _Binding(msgspec.Struct, frozen=True):
    """An ``Idempotency-Key``'s binding: the request fingerprint and the job it made."""

    fingerprint: str
    job_id: str


_record_decoder = msgspec.json.Decoder(JobRecord)
_binding_decoder = msgspec.json.Decoder(_Binding)


class _Choice(NamedTuple):
    existing: JobRecord | None
    bind_dedupe: bool
    bind_idempotency: bool


def _choose(
    record: JobRecord,
    binding: _Binding | None,
    bound_job: JobRecord | None,
    deduped_job: JobRecord | None,
) -> _Choice:
    """The create decision both stores share: which job answers, and which keys to (re)bind."""
    if binding is not None and binding.fingerprint != record.fingerprint:
        raise IdempotencyConflict(binding.job_id)
    if bound_job is not None:
        return _Choice(bound_job, bind_dedupe=False, bind_idempotency=False)
    if deduped_job is not None and is_reusable(deduped_job):
        return _Choice(deduped_job, bind_dedupe=False, bind_idempotency=True)
    return _Choice(None, bind_dedupe=True, bind_idempotency=True)


class FinishedRecords:
    """Terminal records this process wrote, for a little while, and the terminal writes it has
    in flight; shared by the stores of one process (``resolvd serve``'s API and its worker
    have one each, on separate connections).

    A finished record never changes, so the reads that follow its write (the waiters it wakes)
    need not fetch and decode it again: 290 KB of JSON for a 244-package result. A read that
    arrives while the write is in flight (the change's notice can overtake the write's own
    reply) waits for its outcome, one round trip at most, and reads Redis only if the write
    did not apply. Held records are bounded by their encoded bytes and by age (never past
    their expiry in Redis).
    """

    def __init__(self, *, max_bytes: int = 32 * 1024 * 1024, max_age: float = 60.0) -> None:
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._entries: OrderedDict[str, tuple[JobRecord, int, float]] = OrderedDict()
        self._bytes = 0
        self._writing: dict[str, asyncio.Future[JobRecord | None]] = {}

    @contextlib.contextmanager
    def writing(self, job_id: str) -> Iterator[asyncio.Future[JobRecord | None]]:
        """Around a terminal write: the future gets the record written, or None if it did not
        apply (set so on any exit that did not set it)."""
        future: asyncio.Future[JobRecord | None] = asyncio.get_running_loop().create_future()
        self._writing[job_id] = future
        try:
            yield future
        finally:
            if not future.done():
                future.set_result(None)
            if self._writing.get(job_id) is future:
                del self._writing[job_id]

    def put(self, record: JobRecord, size: int, lives: float) -> None:
        """Hold ``record`` (``size`` encoded bytes) for at most ``lives`` seconds."""
        if size > self._max_bytes // 4:
            return
        self._drop(record.id)
        self._entries[record.id] = (record, size, time.monotonic() + min(lives, self._max_age))
        self._bytes += size
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    async def get(self, job_id: str) -> JobRecord | None:
        pending = self._writing.get(job_id)
        if pending is not None:
            written = await asyncio.shield(pending)
            if written is not None:
                return written
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        if entry[2] <= time.monotonic():
            self._drop(job_id)
            return None
        return entry[0]

    def _drop(self, job_id: str) -> None:
        entry = self._entries.pop(job_id, None)
        if entry is not None:
            self._bytes -= entry[1]


class RedisJobStore:
    """``JobStore`` on Redis; safe across any number of API and worker processes.

    ``finished``: the process's ``FinishedRecords`` (a store of its own when not given)."""

    def __init__(
        self, redis: Redis, *, result_ttl: int, finished: FinishedRecords | None = None
    ) -> None:
        self._redis = redis
        self._ttl_ms = result_ttl * 1000
        self._hub = _RedisEventHub(redis)
        self.finished = FinishedRecords() if finished is None else finished

    async def ping(self) -> None:
        await self._redis.ping()

    async def get(self, job_id: str) -> JobRecord | None:
        held = await self.finished.get(job_id)
        if held is not None:
            return held
        raw = await self._redis.get(_job_key(job_id))
        return None if raw is None else _record_decoder.decode(raw)

    async def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> Created:
        dedupe_key = _dedupe_key(record)
        idem_key = _idempotency_key(record.client, idempotency_key) if idempotency_key else None
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    return await self._create_once(pipe, record, dedupe_key, idem_key)
                except WatchError:
                    continue

    async def _create_once(
        self, pipe: Pipeline, record: JobRecord, dedupe_key: str, idem_key: str | None
    ) -> Created:
        watched = [dedupe_key, idem_key] if idem_key else [dedupe_key]
        await pipe.watch(*watched)
        binding = None
        if idem_key and (raw := await pipe.get(idem_key)) is not None:
            binding = _binding_decoder.decode(raw)
        bound_job = await self._watch_and_get(pipe, binding.job_id) if binding else None
        deduped_job = None
        if bound_job is None and (deduped_id := await pipe.get(dedupe_key)) is not None:
            deduped_job = await self._watch_and_get(pipe, _text(deduped_id))
        choice = _choose(record, binding, bound_job, deduped_job)
        job = choice.existing or record
        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
        if choice.existing is None:
            pipe.set(_job_key(record.id), msgspec.json.encode(record), px=self._ttl_ms)
        if choice.bind_dedupe:
            pipe.set(dedupe_key, record.id, px=self._ttl_ms)
        if choice.bind_idempotency and idem_key:
            binding = _Binding(record.fingerprint, job.id)
            pipe.set(idem_key, msgspec.json.encode(binding), px=self._ttl_ms)
        await pipe.execute()
        return Created(job, created=choice.existing is None)

    async def _watch_and_get(self, pipe: Pipeline, job_id: str) -> JobRecord | None:
        await pipe.watch(_job_key(job_id))
        raw = await pipe.get(_job_key(job_id))
        return None if raw is None else _record_decoder.decode(raw)

    async def update(self, job_id: str, transition: Transition) -> Updated:
        key = _job_key(job_id)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return Updated(None, changed=False)
                    current = _record_decoder.decode(raw)
                    new = transition(current)
                    if new is None:
                        return Updated(current, changed=False)
                    pipe.multi()  # type: ignore[no-untyped-call]  # as in create
                    encoded = msgspec.json.encode(new)
                    if new.terminal:
                        pipe.set(key, encoded, px=self._ttl_ms)
                    else:
                        pipe.set(key, encoded, keepttl=True)
                    pipe.publish(_events_channel(job_id), str(new.version))
                    if new.terminal:
                        await self._execute_finishing(pipe, new, len(encoded))
                    else:
                        await pipe.execute()
                    return Updated(new, changed=True)
                except WatchError:
                    continue

    async def _execute_finishing(self, pipe: Pipeline, record: JobRecord, size: int) -> None:
        """The write of a terminal ``record``, with this process's reads waiting on it and the
        record held for them once written."""
        with self.finished.writing(record.id) as written:
            await pipe.execute()
            # Short of the key's own expiry, which began a moment before.
            self.finished.put(record, size, 0.9 * self._ttl_ms / 1000)
            written.set_result(record)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[JobWatch]:
        async with self._hub.subscribe(job_id) as watch:
            yield watch

    async def count_submission(self, client: str, window_seconds: int) -> int:
        window = int(time.time() // window_seconds)
        key = f"{_PREFIX}rate:{client}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def beat(self, worker_id: str) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(_WORKERS_KEY, {worker_id: now})
            pipe.zremrangebyscore(_WORKERS_KEY, 0, now - _WORKER_RETENTION_SECONDS)
            await pipe.execute()

    async def count_workers(self, within_seconds: float) -> int:
        return int(await self._redis.zcount(_WORKERS_KEY, time.time() - within_seconds, "+inf"))

    async def aclose(self) -> None:
        await self._hub.aclose()
        await self._redis.aclose()


class _EventWatch:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return False
        self.event.clear()
        return True


class _Waiters:
    """In-process fan-out from job ids to the watches waiting on them."""

    def __init__(self) -> None:
        self._by_job: defaultdict[str, set[_EventWatch]] = defaultdict(set)

    @contextlib.contextmanager
    def register(self, job_id: str) -> Iterator[_EventWatch]:
        watch = _EventWatch()
        self._by_job[job_id].add(watch)
        try:
            yield watch
        finally:
            waiters = self._by_job[job_id]
            waiters.discard(watch)
            if not waiters:
                del self._by_job[job_id]

    def notify(self, job_id: str) -> None:
        for watch in self._by_job.get(job_id, ()):
            watch.event.set()

    def notify_all(self) -> None:
        for waiters in self._by_job.values():
            for watch in waiters:
                watch.event.set()

    def __bool__(self) -> bool:
        return bool(self._by_job)


class _RedisEventHub:
    """One pattern subscription per process, fanned out to in-process watches.

    A Redis pub/sub connection per waiting client would not scale; this keeps one, started on
    first use. If the connection drops, every waiter is woken (so it re-reads the document) and
    the subscription is re-established.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiters = _Waiters()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[JobWatch]:
        with self._waiters.register(job_id) as watch:
            await self._ensure_running()
            yield watch

    async def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._subscribed.clear()
            self._task = asyncio.create_task(self._run(), name="resolvd-job-events")
        # Bounded: if Redis is down the caller still proceeds and falls back to its timeout.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def _run(self) -> None:
        while True:
            pubsub: PubSub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(_EVENTS_PATTERN)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                    elif message["type"] == "pmessage":
                        channel = message["channel"].decode()
                        self._waiters.notify(channel.removeprefix(f"{_PREFIX}events:"))
            except (RedisError, OSError):
                logger.warning("job event subscription lost; reconnecting", exc_info=True)
                self._subscribed.clear()
                self._waiters.notify_all()
                await asyncio.sleep(0.5)
            finally:
                await pubsub.aclose()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class MemoryJobStore:
    """``JobStore`` in this process's memory: for ``resolvd serve`` without Redis, and tests.

    Every method runs without awaiting between its read and its write, which on one event loop
    is what makes ``create`` and ``update`` atomic.
    """

    def __init__(self, *, result_ttl: int) -> None:
        self._ttl = result_ttl
        self._values: dict[str, tuple[bytes, float]] = {}
        self._rates: dict[str, tuple[int, int]] = {}
        self._workers: dict[str, float] = {}
        self._waiters = _Waiters()

    def _read(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            del self._values[key]
            return None
        return value

    def _write(self, key: str, value: bytes, *, keep_ttl: bool = False) -> None:
        expires = time.monotonic() + self._ttl
        if keep_ttl and key in self._values:
            expires = self._values[key][1]
        self._values[key] = (value, expires)

    def _get_record(self, job_id: str) -> JobRecord | None:
        raw = self._read(_job_key(job_id))
        return None if raw is None else _record_decoder.decode(raw)

    async def ping(self) -> None:
        return None

    async def get(self, job_id: str) -> JobRecord | None:
        return self._get_record(job_id)

    async def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> Created:
        dedupe_key = _dedupe_key(record)
        idem_key = _idempotency_key(record.client, idempotency_key) if idempotency_key else None
        raw_binding = self._read(idem_key) if idem_key else None
        binding = None if raw_binding is None else _binding_decoder.decode(raw_binding)
        bound_job = self._get_record(binding.job_id) if binding else None
        deduped_job = None
        if bound_job is None and (deduped_id := self._read(dedupe_key)) is not None:
            deduped_job = self._get_record(deduped_id.decode())
        choice = _choose(record, binding, bound_job, deduped_job)
        job = choice.existing or record
        if choice.existing is None:
            self._write(_job_key(record.id), msgspec.json.encode(record))
        if choice.bind_dedupe:
            self._write(dedupe_key, record.id.encode())
        if choice.bind_idempotency and idem_key:
            self._write(idem_key, msgspec.json.encode(_Binding(record.fingerprint, job.id)))
        return Created(job, created=choice.existing is None)

    async def update(self, job_id: str, transition: Transition) -> Updated:
        current = self._get_record(job_id)
        if current is None:
            return Updated(None, changed=False)
        new = transition(current)
        if new is None:
            return Updated(current, changed=False)
        self._write(_job_key(job_id), msgspec.json.encode(new), keep_ttl=not new.terminal)
        self._waiters.notify(job_id)
        return Updated(new, changed=True)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[JobWatch]:
        with self._waiters.register(job_id) as watch:
            yield watch

    async def count_submission(self, client: str, window_seconds: int) -> int:
        window = math.floor(time.time() / window_seconds)
        seen_window, count = self._rates.get(client, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._rates[client] = (window, count)
        return count

    async def beat(self, worker_id: str) -> None:
        self._workers[worker_id] = time.time()

    async def count_workers(self, within_seconds: float) -> int:
        since = time.time() - within_seconds
        return sum(1 for seen in self._workers.values() if seen >= since)

    async def aclose(self) -> None:
        self._values.clear()
