"""``resolvd submit``: resolve a ``requirements.in`` on a resolvd server and write its lock.

The command reads the file (``read_requirements`` says what it accepts; a ``*.toml`` file is a
``pyproject.toml``, sent whole as the job's ``pyproject`` with the ``--extra`` and ``--group``
names, as ``uv pip compile pyproject.toml`` takes them), ``POST``s it to
``/resolve``, follows the job on stderr (a rich progress bar on a terminal, plain lines
otherwise), and writes ``GET /jobs/{id}/lock`` in the chosen format to ``-o FILE`` or stdout.
Like ``uv pip compile``, an existing ``-o FILE`` is sent as the job's ``lock``: its pins are
kept where they still fit, unless ``--upgrade`` (all) or ``--upgrade-package/-P NAME[SPEC]``
(that package) lifts them; what moved is listed on stderr, and ``--diff`` also prints it on
stdout as a Markdown table for a pull request.
A failed resolution prints its report instead: the message, the hints with their codes and the
fetch errors. A bearer token comes from the environment variable ``--token-env`` names
(default ``RESOLVD_TOKEN``) and is never printed. Ctrl-C cancels the job.

Exit status: 0 lock written; 1 the job ended without a resolution, or its lock cannot be
written in that format; 2 bad usage, unreadable or unsupported input, a request the server
refused, or a server that cannot be reached or answers unexpectedly; 130 interrupted.

This module is an HTTP client of the public API: it imports no server code but the job
document's type, which is the API's one shape for a job.

Errors::

    SubmitError              the command stops; ``exit_code``, and ``str()`` for stderr
    ├── UsageError           bad arguments or input, or a request the server refused (2)
    ├── ServerError          unreachable, or an answer the API does not give (2)
    ├── JobFailedError       the job failed or was cancelled (1); ``document`` says why
    ├── LockRefusedError     the job succeeded but the format cannot hold it (1)
    └── Interrupted          Ctrl-C while waiting; the job is cancelled (130)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, TextIO
from urllib.parse import urlsplit

import httpx
import msgspec

from service.jobs.model import TERMINAL_STATUSES, JobDocument
from service.resolution.result import PackageChange

__all__ = [
    "Interrupted",
    "JobFailedError",
    "LockRefusedError",
    "RequirementsInput",
    "ServerError",
    "SourceLine",
    "SubmitError",
    "SubmitOptions",
    "UsageError",
    "add_submit_arguments",
    "format_changes_table",
    "read_input",
    "read_requirements",
    "run_submit",
    "submit",
]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TOKEN_ENV = "RESOLVD_TOKEN"
FORMATS = ("pylock", "requirements", "pip-report")
# How long one poll holds (the API's ``?wait=``): the progress display refreshes this often.
_POLL_SECONDS = 1.0
# Without --timeout, wait this long beyond the job's own deadline (it may queue first).
_QUEUE_ALLOWANCE_SECONDS = 120.0
# Plain (non-terminal) progress prints a line at most this often while the job runs.
_PLAIN_INTERVAL_SECONDS = 5.0
# pip's rule: ``#`` at the start of a line or after whitespace starts a comment.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTION = re.compile(r"(?P<name>--[\w-]+|-\w)[=\s]?(?P<value>.*)")
_FIELD_LINE = re.compile(r"^(?P<list>requirements|constraints)\[(?P<position>\d+)\]")


class SubmitError(Exception):
    """The command cannot go on; ``str(exc)`` is its message and ``exit_code`` its status."""

    exit_code = 2


class UsageError(SubmitError):
    """Bad arguments, an unreadable or unsupported input file, or a request the server refused."""


class ServerError(SubmitError):
    """The server cannot be reached, or answered in a way the API never does."""


class JobFailedError(SubmitError):
    """The job ended without a resolution; ``document`` carries its failure report."""

    exit_code = 1

    def __init__(self, document: JobDocument) -> None:
        super().__init__(format_failure(document))
        self.document = document


class LockRefusedError(SubmitError):
    """The job succeeded, but its lock cannot be written in the chosen format."""

    exit_code = 1


class Interrupted(SubmitError):
    """Ctrl-C while the job ran; the job was cancelled."""

    exit_code = 130


# --- the input file ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLine:
    """One requirement or constraint, and where it was read (``requirements.in:3``)."""

    text: str
    origin: str


@dataclass
class RequirementsInput:
    """What the input file holds: requirement and constraint lines, or a pyproject's text."""

    requirements: list[SourceLine] = field(default_factory=list)
    constraints: list[SourceLine] = field(default_factory=list)
    pyproject: str | None = None


# Options a pip requirements file may hold that resolvd cannot honour, and what to do instead.
_REFUSED_OPTIONS = {
    ("-e", "--editable"): "editable installs are local builds; resolvd resolves from indexes",
    ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index"): (
        "indexes are the server's to configure; name one with --index NAME"
    ),
    ("--hash",): "hashes belong in the lock resolvd writes, not in its input",
}


def _iter_logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with comments stripped and ``\\`` continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = _COMMENT.sub("", raw)
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        if joined:
            yield start, joined
    if pending and (joined := " ".join(pending).strip()):
        yield start, joined


def _split_option(line: str) -> tuple[str, str] | None:
    """``("-c", "constraints.txt")`` for an option line (``-c x``, ``-cx``, ``--constraint=x``)."""
    match = _OPTION.fullmatch(line)
    return (match["name"], match["value"].strip()) if match else None


def _refusal(option: str) -> str:
    for names, why in _REFUSED_OPTIONS.items():
        if option in names:
            return f"{option} is not supported: {why}"
    return f"{option} is not supported (resolvd submit reads requirements, -r and -c lines)"


def _read_file(
    path: Path,
    into: RequirementsInput,
    *,
    constraints: bool,
    seen: set[Path],
    included_at: str | None = None,
) -> None:
    where = f"{included_at}: " if included_at else ""
    resolved = path.resolve()
    if resolved in seen:
        raise UsageError(f"{where}{path} is included twice (a -r/-c cycle?)")
    seen.add(resolved)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{where}cannot read {path}: {why}") from exc
    for number, line in _iter_logical_lines(text):
        origin = f"{path}:{number}"
        option = _split_option(line)
        if option is None:
            if " --" in line:
                raise UsageError(f"{origin}: per-requirement options are not supported: {line}")
            target = into.constraints if constraints else into.requirements
            target.append(SourceLine(line, origin))
            continue
        name, value = option
        if name in ("-r", "--requirement", "-c", "--constraint"):
            if not value:
                raise UsageError(f"{origin}: {name} needs a file name")
            nested_constraints = constraints or name in ("-c", "--constraint")
            _read_file(
                path.parent / value,
                into,
                constraints=nested_constraints,
                seen=seen,
                included_at=origin,
            )
            continue
        raise UsageError(f"{origin}: {_refusal(name)}")


def read_requirements(path: Path) -> RequirementsInput:
    """Read a pip-style ``requirements.in``.

    Accepted: PEP 508 requirement lines (markers included), blank lines, ``#`` comments,
    ``\\`` continuations, ``-r FILE`` (more requirements) and ``-c FILE`` (constraints; every
    line of a constraints file, and of what it includes, is a constraint), paths relative to
    the including file. Refused with the file and line: every other option (``-e``,
    ``--index-url``, ``--hash``, per-requirement options). Direct URLs pass through, and the
    server says why it refuses them.
    """
    into = RequirementsInput()
    _read_file(path, into, constraints=False, seen=set())
    if not into.requirements:
        raise UsageError(f"{path}: no requirements to resolve")
    return into


def read_input(
    path: Path, *, extras: Sequence[str] = (), groups: Sequence[str] = ()
) -> RequirementsInput:
    """``path`` as a ``pyproject.toml`` (any ``*.toml``: read whole, the server parses it) or
    else as a ``requirements.in``; ``extras`` and ``groups`` need a pyproject."""
    if path.suffix != ".toml":
        if extras or groups:
            raise UsageError("--extra and --group select from a pyproject.toml; give one")
        return read_requirements(path)
    try:
        return RequirementsInput(pyproject=path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot read {path}: {why}") from exc


# --- reports ---------------------------------------------------------------------------------


def format_failure(document: JobDocument) -> str:
    """The failure report of a job that ended without a resolution.

    The message, then hints and fetch errors with their codes; a diagnostic that repeats what
    was already said (an index error is often all three) is listed by its code alone.
    """
    failure = document.failure
    if failure is None:
        return f"job {document.id} ended {document.status} without a resolution"
    lines = [f"job {document.id} {document.status} ({failure.kind}):", failure.message]
    said = {failure.message}
    for title, diagnostics in (("hints", failure.hints), ("fetch errors", failure.fetch_errors)):
        if diagnostics:
            lines += ["", f"{title}:"]
        for diagnostic in diagnostics:
            text = "(as above)" if diagnostic.message in said else diagnostic.message
            said.add(diagnostic.message)
            lines.append(f"  [{diagnostic.code}] {text}")
    return "\n".join(lines)


def _format_problem(
    response: httpx.Response, sent: RequirementsInput | None, lock_file: Path | None = None
) -> str:
    """A problem document as lines, with ``requirements[i]`` mapped back to file and line and
    ``lock.*`` to the existing output file."""
    try:
        problem = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:300]}"
    if not isinstance(problem, dict):
        return f"{response.status_code} {response.text[:300]}"
    lines = [str(problem.get("detail") or problem.get("title") or response.status_code)]
    for error in problem.get("errors") or []:
        where = str(error.get("field", ""))
        if sent is not None and (match := _FIELD_LINE.match(where)):
            listed = getattr(sent, match["list"])
            position = int(match["position"])
            if position < len(listed):
                where = f"{listed[position].origin}: {listed[position].text}"
        elif lock_file is not None and where.startswith("lock"):
            where = f"{lock_file} (the existing lock)"
        lines.append(f"  {where}: {error.get('message', '')}")
    return "\n".join(lines)


def format_changes(changes: Sequence[PackageChange]) -> str:
    """The changes from the previous lock, one line each, for stderr."""
    if not changes:
        return "resolvd: no changes from the existing lock\n"
    lines = [
        f"resolvd: {len(changes)} change{'s' if len(changes) > 1 else ''} from the existing lock:"
    ]
    for change in changes:
        versions = f"{change.from_ or '(none)'} -> {change.to or '(none)'}"
        reason = f": {change.reason}" if change.reason else ""
        lines.append(f"  {change.kind:<10} {change.name} {versions}{reason}")
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def format_changes_table(changes: Sequence[PackageChange]) -> str:
    """The changes as a GitHub Markdown table, ready to paste into a pull request."""
    if not changes:
        return "No changes to the lock.\n"
    lines = ["| Package | From | To | Change | Reason |", "|---|---|---|---|---|"]
    lines += [
        f"| {_cell(c.name)} | {_cell(c.from_)} | {_cell(c.to)} | {c.kind} | {_cell(c.reason)} |"
        for c in changes
    ]
    return "\n".join(lines) + "\n"


# --- progress --------------------------------------------------------------------------------


class ProgressDisplay(Protocol):
    def show(self, document: JobDocument) -> None: ...


def _describe(document: JobDocument) -> str:
    progress = document.progress
    if document.status != "running":
        return document.status
    return (
        f"running: {progress.packages} packages, {progress.versions_tried} versions tried, "
        f"{progress.requests} requests"
    )


class _PlainProgress:
    """One line per status change, and a progress line now and then, for logs and pipes."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._status = ""
        self._printed_at = 0.0

    def show(self, document: JobDocument) -> None:
        now = time.monotonic()
        changed = document.status != self._status
        if changed or now - self._printed_at >= _PLAIN_INTERVAL_SECONDS:
            self._status = document.status
            self._printed_at = now
            self._err.write(f"resolvd: job {document.id} {_describe(document)}\n")
            self._err.flush()


@contextlib.contextmanager
def _open_progress(err: TextIO) -> Iterator[ProgressDisplay]:
    if not err.isatty():
        yield _PlainProgress(err)
        return
    # Only a terminal needs rich; ``resolvd serve`` builds this parser too.
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(file=err),
        transient=True,
    )
    task = bar.add_task("submitting", total=None)

    class _RichProgress:
        def show(self, document: JobDocument) -> None:
            bar.update(task, description=_describe(document))

    with bar:
        yield _RichProgress()


# --- the conversation with the server --------------------------------------------------------


@dataclass(frozen=True)
class SubmitOptions:
    """What ``resolvd submit`` was asked to do (``add_submit_arguments`` documents each)."""

    requirements_file: Path
    url: str = DEFAULT_URL
    extras: Sequence[str] = ()
    groups: Sequence[str] = ()
    indexes: Sequence[str] = ()
    python_version: str | None = None
    platform: str | None = None
    lock_format: str | None = None
    output: Path | None = None
    token_env: str | None = None
    timeout: float | None = None
    upgrade: bool = False
    upgrade_packages: Sequence[str] = ()
    diff: bool = False

    @property
    def chosen_format(self) -> str:
        """``--format``, else what ``-o``'s suffix suggests, else ``requirements``."""
        if self.lock_format:
            return self.lock_format
        suffix = self.output.suffix if self.output else ""
        return {".toml": "pylock", ".json": "pip-report"}.get(suffix, "requirements")


class _Api:
    """The few calls the command makes; transport failures become ``ServerError``."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach resolvd at {self._client.base_url}: {exc}") from exc

    def _document(self, response: httpx.Response) -> JobDocument:
        try:
            return msgspec.json.decode(response.content, type=JobDocument)
        except msgspec.DecodeError as exc:
            raise ServerError(f"unexpected answer from {response.url}: {exc}") from exc

    def _refused(
        self,
        response: httpx.Response,
        sent: RequirementsInput | None = None,
        lock_file: Path | None = None,
    ) -> NoReturn:
        if response.status_code == 401:
            raise UsageError(
                f"the server wants a bearer token: {_format_problem(response, None)}\n"
                f"  set ${DEFAULT_TOKEN_ENV}, or name the variable holding it with --token-env"
            )
        if 400 <= response.status_code < 500:
            refusal = _format_problem(response, sent, lock_file)
            raise UsageError(f"the server refused the request: {refusal}")
        raise ServerError(
            f"{response.request.method} {response.url.path}: {_format_problem(response, None)}"
        )

    def create(
        self, body: Mapping[str, Any], sent: RequirementsInput, lock_file: Path | None = None
    ) -> JobDocument:
        response = self._request("POST", "/resolve", json=body)
        if response.status_code not in (200, 202):
            self._refused(response, sent, lock_file)
        return self._document(response)

    def poll(self, job_id: str) -> JobDocument:
        response = self._request("GET", f"/jobs/{job_id}", params={"wait": _POLL_SECONDS})
        if response.status_code != 200:
            self._refused(response)
        return self._document(response)

    def lock(self, job_id: str, lock_format: str) -> str:
        response = self._request("GET", f"/jobs/{job_id}/lock", params={"format": lock_format})
        if response.status_code == 409:
            raise LockRefusedError(_format_problem(response, None))
        if response.status_code != 200:
            self._refused(response)
        return response.text

    def cancel(self, job_id: str) -> None:
        with contextlib.suppress(SubmitError):
            self._request("DELETE", f"/jobs/{job_id}")


def read_existing_lock(options: SubmitOptions) -> str | None:
    """The text of ``-o FILE`` when it exists and holds something: the previous lock."""
    if options.output is None or not options.output.exists():
        return None
    try:
        text = options.output.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot read the existing {options.output}: {why}") from exc
    return text if text.strip() else None


def _make_body(
    options: SubmitOptions, sent: RequirementsInput, lock: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requirements": [line.text for line in sent.requirements],
        "constraints": [line.text for line in sent.constraints],
    }
    if sent.pyproject is not None:
        body["pyproject"] = {
            "content": sent.pyproject,
            "extras": list(options.extras),
            "groups": list(options.groups),
        }
    if lock is not None:
        body["lock"] = {"format": options.chosen_format, "content": lock}
    if options.upgrade:
        body["upgrade"] = True
    if options.upgrade_packages:
        body["upgrade_packages"] = list(options.upgrade_packages)
    environment = {
        key: value
        for key, value in (
            ("python_version", options.python_version),
            ("platform", options.platform),
        )
        if value
    }
    if environment:
        body["environment"] = environment
    if options.indexes:
        body["indexes"] = [{"name": name} for name in options.indexes]
    return body


def _make_client(options: SubmitOptions, environ: Mapping[str, str]) -> httpx.Client:
    parts = urlsplit(options.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url must be an http(s) URL, got {options.url!r}")
    headers = {"User-Agent": "resolvd-submit"}
    variable = options.token_env or DEFAULT_TOKEN_ENV
    token = environ.get(variable, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif options.token_env:
        raise UsageError(f"--token-env {variable}: that environment variable is not set")
    timeout = httpx.Timeout(10.0, read=_POLL_SECONDS + 30.0)
    return httpx.Client(base_url=options.url, headers=headers, timeout=timeout)


def _follow(
    api: _Api, document: JobDocument, display: ProgressDisplay, limit: float
) -> JobDocument:
    until = time.monotonic() + limit
    display.show(document)
    while document.status not in TERMINAL_STATUSES:
        if time.monotonic() > until:
            raise ServerError(
                f"job {document.id} is still {document.status} after {limit:g} s; "
                "is a worker running? (see GET /readyz)"
            )
        document = api.poll(document.id)
        display.show(document)
    return document


def _write_lock(options: SubmitOptions, text: str, out: TextIO) -> None:
    if options.output is None:
        out.write(text)
        out.flush()
        return
    try:
        options.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {options.output}: {exc.strerror or exc}") from exc


def _wait(api: _Api, job: JobDocument, options: SubmitOptions, err: TextIO) -> JobDocument:
    """Follow ``job`` to its end; the succeeded document, else ``JobFailedError``."""
    limit = options.timeout or job.request.deadline_seconds + _QUEUE_ALLOWANCE_SECONDS
    try:
        with _open_progress(err) as display:
            document = _follow(api, job, display, limit)
    except KeyboardInterrupt:
        api.cancel(job.id)
        raise Interrupted(f"interrupted; job {job.id} cancelled") from None
    if document.status != "succeeded" or document.result is None:
        raise JobFailedError(document)
    return document


def submit(
    options: SubmitOptions,
    *,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str],
) -> int:
    """Run ``resolvd submit``; returns the exit status (messages go to ``err``)."""
    try:
        if options.diff and options.output is None:
            raise UsageError("--diff needs -o FILE: the existing file is the lock to compare with")
        sent = read_input(options.requirements_file, extras=options.extras, groups=options.groups)
        lock = read_existing_lock(options)
        with _make_client(options, environ) as client:
            api = _Api(client)
            lock_file = options.output if lock is not None else None
            job = api.create(_make_body(options, sent, lock), sent, lock_file)
            document = _wait(api, job, options, err)
            _write_lock(options, api.lock(document.id, options.chosen_format), out)
    except SubmitError as exc:
        err.write(f"resolvd submit: {exc}\n")
        return exc.exit_code
    result = document.result
    assert result is not None  # _wait returns succeeded jobs only
    for warning in result.warnings:
        err.write(f"warning[{warning.code}]: {warning.message}\n")
    if result.changes is not None:
        err.write(format_changes(result.changes))
    if options.diff:
        out.write(format_changes_table(result.changes or []))
    where = options.output or "stdout"
    err.write(
        f"resolvd: {len(result.packages)} packages locked as {options.chosen_format} to "
        f"{where} (job {document.id})\n"
    )
    return 0


# --- the command line ------------------------------------------------------------------------


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``resolvd submit`` arguments, on ``parser``."""
    parser.add_argument(
        "requirements_file",
        type=Path,
        metavar="requirements.in|pyproject.toml",
        help="requirement lines, or a pyproject.toml (any *.toml) whose dependencies to lock",
    )
    parser.add_argument(
        "--extra",
        dest="extras",
        action="append",
        default=[],
        metavar="EXTRA",
        help="with a pyproject.toml: also its optional dependencies EXTRA ('all': every "
        "extra); repeatable",
    )
    parser.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        metavar="GROUP",
        help="with a pyproject.toml: also its PEP 735 dependency group GROUP; repeatable",
    )
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="NAME",
        help="a configured index to resolve from, in priority order (repeatable; default: "
        "the server's configured indexes)",
    )
    parser.add_argument(
        "--python", dest="python_version", metavar="VERSION", help="target Python, e.g. 3.12"
    )
    parser.add_argument(
        "--platform", help="target platform in uv's vocabulary, e.g. x86_64-manylinux_2_28"
    )
    parser.add_argument(
        "--format",
        dest="lock_format",
        choices=FORMATS,
        help="lock format (default: pylock for -o *.toml, pip-report for -o *.json, "
        "else requirements)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("RESOLVD_URL", DEFAULT_URL),
        help=f"the resolvd server (default: $RESOLVD_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        help=f"environment variable holding the bearer token (default: {DEFAULT_TOKEN_ENV}, "
        "used when set)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="default: stdout; when FILE exists, its pins are kept where they still fit "
        "(as uv pip compile does)",
    )
    parser.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="ignore the pins of the existing -o FILE: resolve afresh",
    )
    parser.add_argument(
        "-P",
        "--upgrade-package",
        dest="upgrade_packages",
        action="append",
        default=[],
        metavar="NAME[SPEC]",
        help="ignore the existing pin of this package (a specifier also constrains it); repeatable",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the changes from the existing -o FILE on stdout as a Markdown table",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up waiting after this long (default: the job's deadline plus two minutes)",
    )


def run_submit(args: argparse.Namespace) -> int:
    """``resolvd submit`` from parsed arguments, on the process's streams and environment."""
    options = SubmitOptions(
        requirements_file=args.requirements_file,
        url=args.url,
        extras=tuple(args.extras),
        groups=tuple(args.groups),
        indexes=tuple(args.index),
        python_version=args.python_version,
        platform=args.platform,
        lock_format=args.lock_format,
        output=args.output,
        token_env=args.token_env,
        timeout=args.timeout,
        upgrade=args.upgrade,
        upgrade_packages=tuple(args.upgrade_packages),
        diff=args.diff,
    )
    return submit(options, out=sys.stdout, err=sys.stderr, environ=os.environ)
