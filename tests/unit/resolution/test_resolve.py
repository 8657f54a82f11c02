"""Resolving against a real loopback index through the real index client.

These are the resolver's specification: what it picks, what it warns about, and how it explains
failure — including the client-error policies that are resolvd's reason to exist.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from service.diagnostics.model import Code
from service.index import IndexClient
from service.index.models import ErrorPolicy, Index
from service.resolution import Progress, ResolutionFailed, ResolveRequest, Target, resolve_request
from service.resolution.explain.hints import MAX_PROBES
from service.resolution.request import StaticMetadata
from service.resolution.result import Failure, Resolution
from service.settings import FetchLimits
from tests.indexserver import IndexServer, IndexSpec, Project, Release

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def client() -> AsyncIterator[IndexClient]:
    async with IndexClient(FetchLimits(retries=0, fetch_deadline=10)) as client:
        yield client


def request(*requirements: str, **options: object) -> ResolveRequest:
    options.setdefault(
        "environment", Target(python_version="3.12", platform="x86_64-manylinux_2_28")
    )
    return ResolveRequest(requirements=tuple(requirements), **options)  # type: ignore[arg-type]


def index(
    server: IndexServer, name: str, *, page: Sequence[int] = (404,), metadata: Sequence[int] = ()
) -> Index:
    return Index(
        name=name,
        url=server.url(name),
        policy=ErrorPolicy(page=frozenset(page) | {404}, metadata=frozenset(metadata)),
    )


async def resolve(client: IndexClient, req: ResolveRequest, indexes: Sequence[Index]) -> Resolution:
    return await resolve_request(
        req, indexes=indexes, client=client, progress=Progress(), stop=threading.Event()
    )


async def fail(client: IndexClient, req: ResolveRequest, indexes: Sequence[Index]) -> Failure:
    with pytest.raises(ResolutionFailed) as caught:
        await resolve(client, req, indexes)
    return caught.value.failure


def versions(resolution: Resolution) -> dict[str, str]:
    return {p.name: p.version for p in resolution.packages}


FLASK = Project(
    "Flask",
    [
        Release("2.0.0", requires=["click>=7"]),
        Release("3.0.0", requires=["click>=8", "blinker; python_version >= '3.9'"]),
        Release(
            "3.1.0",
            requires=[
                "click>=8",
                "blinker; python_version >= '3.9'",
                "colorama; sys_platform == 'win32'",
            ],
        ),
        Release("3.2.0rc1", requires=["click>=8"]),
    ],
)
CLICK = Project("click", [Release("7.0"), Release("8.1.7")])
BLINKER = Project("blinker", [Release("1.8.0")])


class TestSuccess:
    async def test_picks_highest_with_dependencies_and_markers(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Highest stable versions are chosen; markers are evaluated for the target."""
        index_server.add_index(IndexSpec("corp", [FLASK, CLICK, BLINKER]))
        result = await resolve(client, request("flask"), [index(index_server, "corp")])
        assert versions(result) == {"flask": "3.1.0", "click": "8.1.7", "blinker": "1.8.0"}
        flask = next(p for p in result.packages if p.name == "flask")
        assert flask.requested and flask.index == "corp"
        assert flask.dependencies == ["blinker", "click"]
        assert flask.file.filename == "flask-3.1.0-py3-none-any.whl"
        assert len(flask.file.hashes["sha256"]) == 64
        click = next(p for p in result.packages if p.name == "click")
        assert click.required_by == ["flask"] and not click.requested
        assert result.warnings == []

    async def test_windows_target_pulls_platform_dependencies(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A Windows target evaluates sys_platform markers as win32."""
        index_server.add_index(
            IndexSpec("corp", [FLASK, CLICK, BLINKER, Project("colorama", [Release("0.4.6")])])
        )
        req = request(
            "flask", environment=Target(python_version="3.12", platform="x86_64-pc-windows-msvc")
        )
        result = await resolve(client, req, [index(index_server, "corp")])
        assert "colorama" in versions(result)

    async def test_extras_and_constraints(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Extras pull their dependencies; constraints narrow versions without adding packages."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("requests", [Release("2.32.0", extras={"socks": ["pysocks>=1.5"]})]),
                    Project("pysocks", [Release("1.6.0"), Release("1.7.1")]),
                    Project("unused", [Release("1.0")]),
                ],
            )
        )
        req = request("requests[socks]", constraints=("pysocks<1.7", "unused<1"))
        result = await resolve(client, req, [index(index_server, "corp")])
        assert versions(result) == {"requests": "2.32.0", "pysocks": "1.6.0"}
        assert next(p for p in result.packages if p.name == "requests").extras == ["socks"]

    async def test_overrides_replace_transitive_requirements(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An override replaces every requirement on that name, including transitive ones."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("a", [Release("1.0", requires=["b<2"])]),
                    Project("b", [Release("1.0"), Release("2.0")]),
                ],
            )
        )
        result = await resolve(
            client, request("a", overrides=("b>=2",)), [index(index_server, "corp")]
        )
        assert versions(result) == {"a": "1.0", "b": "2.0"}

    async def test_lowest_resolution(self, index_server: IndexServer, client: IndexClient) -> None:
        """resolution=lowest picks the lowest matching versions."""
        index_server.add_index(IndexSpec("corp", [FLASK, CLICK, BLINKER]))
        result = await resolve(
            client, request("flask>=3", resolution="lowest"), [index(index_server, "corp")]
        )
        assert versions(result)["flask"] == "3.0.0"
        assert versions(result)["click"] == "8.1.7"

    async def test_yanked_skipped_with_warning(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A yanked version is passed over and the result says so."""
        index_server.add_index(
            IndexSpec(
                "corp", [Project("a", [Release("1.0"), Release("2.0", yanked="broken build")])]
            )
        )
        result = await resolve(client, request("a"), [index(index_server, "corp")])
        assert versions(result) == {"a": "1.0"}
        [warning] = result.warnings
        assert warning.code is Code.YANKED and warning.version == "2.0"
        assert "broken build" in warning.message

    async def test_sdist_with_static_metadata_is_used(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A version with only an sdist (PEP 643 static metadata) resolves without a build."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("a", [Release("1.0", wheel=False, sdist=True, requires=["b"])]),
                    Project("b", [Release("1.0")]),
                ],
            )
        )
        result = await resolve(client, request("a"), [index(index_server, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        assert next(p for p in result.packages if p.name == "a").file.filename == "a-1.0.tar.gz"


class TestMetadataPolicy:
    SPEC = IndexSpec(
        "corp", [Project("flask", [Release("2.0.0"), Release("3.0.0"), Release("3.1.0")])]
    )

    async def test_unlisted_status_fails_naming_everything(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Seed (a): a 403 on one version's metadata fails the job, naming index, package,
        version, status and the setting that would let the resolver backtrack."""
        index_server.add_index(self.SPEC)
        index_server.inject("/corp/files/flask-3.1.0-*", status=403)
        failure = await fail(client, request("flask"), [index(index_server, "corp")])
        assert failure.kind == "metadata_error"
        [diagnostic] = failure.fetch_errors
        assert diagnostic.code is Code.METADATA_UNAVAILABLE
        assert (diagnostic.package, diagnostic.version, diagnostic.index, diagnostic.status) == (
            "flask",
            "3.1.0",
            "corp",
            403,
        )
        assert "ignore_error_codes.metadata = [403]" in diagnostic.message
        assert "403 Forbidden" in failure.message

    async def test_listed_status_backtracks_and_warns(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Seed (b): with metadata = [403] the previous version is used and the skip is reported."""
        index_server.add_index(self.SPEC)
        index_server.inject("/corp/files/flask-3.1.0-*", status=403)
        result = await resolve(
            client, request("flask"), [index(index_server, "corp", metadata=[403])]
        )
        assert versions(result) == {"flask": "3.0.0"}
        [warning] = result.warnings
        assert warning.code is Code.METADATA_UNAVAILABLE
        assert (warning.version, warning.status, warning.severity) == ("3.1.0", 403, "warning")

    async def test_all_stable_unfetchable_explains_and_hints(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Seed (c): every stable version 404s (listed), pre-releases disallowed: the message
        reads like uv's and hints name the pre-release and the status."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [Project("flask", [Release("2.0.0"), Release("3.0.0"), Release("3.1.0rc1")])],
            )
        )
        index_server.inject("/corp/files/flask-2.0.0-*", status=404)
        index_server.inject("/corp/files/flask-3.0.0-*", status=404)
        failure = await fail(
            client,
            request("flask", prerelease="disallow"),
            [index(index_server, "corp", metadata=[404])],
        )
        assert failure.kind == "unsatisfiable"
        assert (
            "Because all versions of flask could not be fetched from the network (404 Not Found) "
            "and you require flask, we can conclude that your requirements are unsatisfiable."
        ) in failure.message
        codes = {hint.code: hint for hint in failure.hints}
        assert codes[Code.PRERELEASE_AVAILABLE].version == "3.1.0rc1"
        assert codes[Code.METADATA_UNAVAILABLE].status == 404
        [cause] = failure.causes
        assert {(v.version, v.reason, v.status) for v in cause.versions} == {
            ("2.0.0", "metadata_unavailable", 404),
            ("3.0.0", "metadata_unavailable", 404),
        }


class TestPagePolicy:
    async def test_forbidden_first_index_fails_closed(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Seed (d): a 403 on the first index's page never falls through to a later index."""
        index_server.add_index(IndexSpec("corp", [Project("flask", [Release("3.0.0")])]))
        index_server.add_index(IndexSpec("public", [Project("flask", [Release("9.9.9")])]))
        index_server.inject("/corp/simple/flask/", status=403)
        failure = await fail(
            client, request("flask"), [index(index_server, "corp"), index(index_server, "public")]
        )
        assert failure.kind == "index_error"
        assert failure.fetch_errors[0].code is Code.INDEX_FORBIDDEN
        assert failure.fetch_errors[0].index == "corp"
        assert index_server.count("/public/*") == 0

    async def test_unauthorized_first_index_fails_closed(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A 401 (missing credentials) fails closed too, with its own code."""
        index_server.add_index(
            IndexSpec("corp", [Project("flask", [Release("3.0.0")])], basic_auth=("u", "p"))
        )
        index_server.add_index(IndexSpec("public", [Project("flask", [Release("9.9.9")])]))
        failure = await fail(
            client, request("flask"), [index(index_server, "corp"), index(index_server, "public")]
        )
        assert failure.fetch_errors[0].code is Code.INDEX_UNAUTHORIZED

    async def test_listed_page_status_falls_through(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Seed (d): with page = [403] the next index is used, and the result says so."""
        index_server.add_index(IndexSpec("corp", [Project("flask", [Release("3.0.0")])]))
        index_server.add_index(IndexSpec("public", [Project("flask", [Release("9.9.9")])]))
        index_server.inject("/corp/simple/flask/", status=403)
        result = await resolve(
            client,
            request("flask"),
            [index(index_server, "corp", page=[403]), index(index_server, "public")],
        )
        assert result.packages[0].version == "9.9.9" and result.packages[0].index == "public"
        assert [w.code for w in result.warnings] == [Code.INDEX_FORBIDDEN]

    async def test_first_index_hint_names_hidden_version(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """first-index hides a later index's matching version; the failure hints at it."""
        index_server.add_index(IndexSpec("corp", [Project("flask", [Release("1.0")])]))
        index_server.add_index(IndexSpec("public", [Project("flask", [Release("3.0")])]))
        failure = await fail(
            client,
            request("flask>=2"),
            [index(index_server, "corp"), index(index_server, "public")],
        )
        hint = next(h for h in failure.hints if h.code is Code.FOUND_ON_OTHER_INDEX)
        assert (hint.version, hint.index) == ("3.0", "public")


class TestExplanations:
    async def test_conflict_with_root(self, index_server: IndexServer, client: IndexClient) -> None:
        """A dependency conflicting with a direct requirement is explained as a chain."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("a", [Release("1.0", requires=["b<2"])]),
                    Project("b", [Release("1.0"), Release("2.0")]),
                ],
            )
        )
        failure = await fail(client, request("a", "b>=2"), [index(index_server, "corp")])
        assert failure.kind == "unsatisfiable"
        assert "a==1.0 depends on b<2" in failure.message
        assert "you require b>=2" in failure.message
        assert failure.message.endswith("we can conclude that your requirements are unsatisfiable.")
        conflict = next(h for h in failure.hints if h.code is Code.DEPENDENCY_CONFLICT)
        assert conflict.package == "b"
        assert {r["requirement"] for r in conflict.data["requirements"]} == {"b<2", "b>=2"}

    async def test_no_matching_version(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A pin nothing satisfies is hinted with what does exist, newest first."""
        index_server.add_index(
            IndexSpec("corp", [Project("a", [Release("1.0"), Release("1.1"), Release("3.0")])])
        )
        failure = await fail(client, request("a==2.0"), [index(index_server, "corp")])
        assert "there is no version of a==2.0" in failure.message
        hint = next(h for h in failure.hints if h.code is Code.NO_MATCHING_VERSION)
        assert hint.data == {"requirement": "a==2.0", "available": ["3.0", "1.1", "1.0"]}

    async def test_versions_ruled_out_by_another_root_are_named(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """resolvelib's last conflict leaves a==2.0 unexplained; the requirer b that excludes
        it completes the chain (uv: "all versions of b depend on a==1.0 and you require b")."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("a", [Release("1.0", requires=["c"]), Release("2.0")]),
                    Project("b", [Release(v, requires=["a==1.0"]) for v in ("1.0", "2.0")]),
                ],
            )
        )
        failure = await fail(client, request("a", "b"), [index(index_server, "corp")])
        assert "c was not found" in failure.message
        assert "a==1.0 cannot be used" in failure.message
        assert "all versions of b depend on a==1.0 and you require a and b" in failure.message

    async def test_missing_package(self, index_server: IndexServer, client: IndexClient) -> None:
        """A project no index has is reported as not found, with a hint."""
        index_server.add_index(IndexSpec("corp", []))
        failure = await fail(client, request("nosuch"), [index(index_server, "corp")])
        assert "nosuch was not found" in failure.message
        assert [h.code for h in failure.hints] == [Code.PACKAGE_NOT_FOUND]

    async def test_similar_name(self, index_server: IndexServer, client: IndexClient) -> None:
        """A missing name whose common variant exists gets a similar_name hint."""
        index_server.add_index(IndexSpec("corp", [Project("python-dateutil", [Release("2.9.0")])]))
        failure = await fail(client, request("dateutil"), [index(index_server, "corp")])
        hint = next(h for h in failure.hints if h.code is Code.SIMILAR_NAME)
        assert hint.data["suggestion"] == "python-dateutil"

    async def test_similar_name_probes_are_capped(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """However many indexes a request names, a missing name costs at most MAX_PROBES
        fetches beyond the resolution's own (1,000 indexes once made 4,000 requests)."""
        indexes = []
        for n in range(40):
            index_server.add_index(IndexSpec(f"i{n}", []))
            indexes.append(index(index_server, f"i{n}"))
        failure = await fail(client, request("nosuch"), indexes)
        assert [h.code for h in failure.hints] == [Code.PACKAGE_NOT_FOUND]
        probes = [r.path for r in index_server.requests if "/nosuch/" not in r.path]
        assert len(probes) == MAX_PROBES

    async def test_requires_python(self, index_server: IndexServer, client: IndexClient) -> None:
        """Versions needing a newer Python are explained with the target Python version."""
        index_server.add_index(
            IndexSpec("corp", [Project("a", [Release("1.0", requires_python=">=3.13")])])
        )
        failure = await fail(client, request("a"), [index(index_server, "corp")])
        assert "3.12.0" in failure.message and ">=3.13" in failure.message
        assert Code.REQUIRES_PYTHON in {h.code for h in failure.hints}

    async def test_no_compatible_wheels(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Wheels only for another platform are explained with the tags that exist."""
        index_server.add_index(
            IndexSpec(
                "corp", [Project("a", [Release("1.0", wheel_tags=["cp312-cp312-win_amd64"])])]
            )
        )
        failure = await fail(client, request("a"), [index(index_server, "corp")])
        hint = next(h for h in failure.hints if h.code is Code.NO_COMPATIBLE_WHEELS)
        assert hint.data["wheel_tags"] == ["cp312-cp312-win_amd64"]


class TestSkippedVersions:
    async def test_exclude_newer(self, index_server: IndexServer, client: IndexClient) -> None:
        """Files uploaded after exclude_newer are passed over, and a failure says why."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project(
                        "a",
                        [
                            Release("1.0", upload_time="2023-05-01T00:00:00Z"),
                            Release("2.0", upload_time="2025-05-01T00:00:00Z"),
                        ],
                    )
                ],
            )
        )
        indexes = [index(index_server, "corp")]
        result = await resolve(client, request("a", exclude_newer="2024-01-01T00:00:00Z"), indexes)
        assert versions(result) == {"a": "1.0"}
        failure = await fail(client, request("a>=2", exclude_newer="2024-01-01T00:00:00Z"), indexes)
        hint = next(h for h in failure.hints if h.code is Code.EXCLUDE_NEWER)
        assert hint.version == "2.0"
        assert "exclude_newer" in failure.message

    async def test_sdist_with_dynamic_metadata(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An sdist whose dependencies are Dynamic is never built: it is skipped, with a
        warning on success and a hint on failure."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project(
                        "a",
                        [
                            Release("1.0"),
                            Release(
                                "2.0", wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"]
                            ),
                        ],
                    )
                ],
            )
        )
        indexes = [index(index_server, "corp")]
        result = await resolve(client, request("a"), indexes)
        assert versions(result) == {"a": "1.0"}
        assert [w.code for w in result.warnings] == [Code.SDIST_DYNAMIC_METADATA]
        failure = await fail(client, request("a>=2"), indexes)
        assert Code.SDIST_DYNAMIC_METADATA in {h.code for h in failure.hints}

    async def test_invalid_metadata(self, index_server: IndexServer, client: IndexClient) -> None:
        """A version declaring an unparsable requirement is skipped with invalid_metadata."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [Project("a", [Release("1.0"), Release("2.0", requires=["b >= = 1"])])],
            )
        )
        result = await resolve(client, request("a"), [index(index_server, "corp")])
        assert versions(result) == {"a": "1.0"}
        [warning] = result.warnings
        assert (warning.code, warning.version) == (Code.INVALID_METADATA, "2.0")

    async def test_no_binary_refuses_wheels(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A version with only wheels, under no_binary, is refused with the no_binary code."""
        index_server.add_index(IndexSpec("corp", [Project("a", [Release("1.0")])]))
        failure = await fail(client, request("a", no_binary=("a",)), [index(index_server, "corp")])
        assert "a==1.0 has no source distribution (no_binary is set for a)" in failure.message
        (hint,) = failure.hints
        assert (hint.code, hint.version) == (Code.NO_BINARY, "1.0")
        assert hint.data["setting"] == "no_binary"


class TestInputs:
    async def test_no_deps_resolves_only_the_listed_requirements(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """``no_deps``: the listed requirements (and the base of an extra) are pinned, none of
        their dependencies, and no dependency's page is read."""
        index_server.add_index(IndexSpec("corp", [FLASK, CLICK, BLINKER]))
        result = await resolve(
            client, request("flask", "click<8", no_deps=True), [index(index_server, "corp")]
        )
        assert versions(result) == {"flask": "3.1.0", "click": "7.0"}
        assert index_server.count("/corp/blinker/") == 0

    async def test_dependency_metadata_replaces_the_index_metadata(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """``dependency_metadata`` replaces a version's metadata: its Requires-Dist are followed
        instead of the index's, and that version's metadata is never fetched."""
        index_server.add_index(IndexSpec("corp", [FLASK, CLICK, BLINKER]))
        static = StaticMetadata(name="flask", version="3.1.0", requires_dist=("blinker",))
        result = await resolve(
            client,
            request("flask", dependency_metadata=(static,)),
            [index(index_server, "corp")],
        )
        assert versions(result) == {"flask": "3.1.0", "blinker": "1.8.0"}
        assert index_server.count("/corp/files/flask-3.1.0*") == 0

    async def test_dependency_metadata_locks_a_dynamic_sdist_without_building(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An sdist whose dependencies are Dynamic is usable with metadata for every version
        of its name; its extras come from the markers; a Requires-Python there still rules."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project(
                        "legacy",
                        [
                            Release("1.0"),
                            Release(
                                "2.0", wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"]
                            ),
                            Release(
                                "3.0", wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"]
                            ),
                        ],
                    ),
                    CLICK,
                    BLINKER,
                ],
            )
        )
        static = (
            StaticMetadata(name="legacy", requires_dist=("click", "blinker; extra == 'signals'")),
            StaticMetadata(name="legacy", version="3.0", requires_python=">=3.13"),
        )
        result = await resolve(
            client,
            request("legacy[signals]", dependency_metadata=static),
            [index(index_server, "corp")],
        )
        assert versions(result) == {"legacy": "2.0", "click": "8.1.7", "blinker": "1.8.0"}
        assert [w.code for w in result.warnings] == []
        assert index_server.count("/corp/files/legacy-*") == 0


class TestDirectURLs:
    A = Project("a", [Release("1.0", requires=["b"]), Release("2.0", requires=["b"])])
    B = Project("b", [Release("1.0")])

    @staticmethod
    def file_url(server: IndexServer, filename: str) -> tuple[str, str]:
        """A served file's URL and sha256."""
        url = f"{server.base_url}/corp/files/{filename}"
        return url, hashlib.sha256(httpx.get(url).content).hexdigest()

    async def test_a_wheel_url_is_the_only_candidate(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """``a @ URL`` pins the URL's version (the index has a newer one), follows its
        dependencies, and the result carries the file with the sha256 computed from its bytes;
        the index's page of ``a`` is never read."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, sha256 = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        result = await resolve(client, request(f"a @ {url}"), [index(index_server, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        a = next(p for p in result.packages if p.name == "a")
        assert a.direct and a.requested and a.index == "corp"
        assert (a.file.url, a.file.hashes) == (url, {"sha256": sha256})
        assert index_server.count("/corp/simple/a/") == 0
        assert not next(p for p in result.packages if p.name == "b").direct

    async def test_the_url_hash_is_checked(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A ``#sha256=`` fragment is checked against the bytes: equal resolves, different
        fails the job naming the requirement; so does a URL that answers 404, with no policy
        advice (there is no other version to fall back to)."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, sha256 = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        indexes = [index(index_server, "corp")]
        result = await resolve(client, request(f"a @ {url}#sha256={sha256}"), indexes)
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        failure = await fail(client, request(f"a @ {url}#sha256={'0' * 64}"), indexes)
        assert failure.kind == "metadata_error"
        assert failure.message.startswith(f"The file of the direct URL requirement a @ {url} ")
        assert "sha256 digest differs" in failure.message
        missing = url.replace("a-1.0", "a-3.0")
        failure = await fail(client, request(f"a @ {missing}"), indexes)
        [hint] = failure.hints
        assert (hint.code, hint.status) == (Code.METADATA_UNAVAILABLE, 404)
        assert "used: 404 Not Found." in hint.message and "ignore_error_codes" not in hint.message

    async def test_a_static_sdist_url_and_a_conflicting_specifier(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An sdist URL with static metadata resolves; another requirement the URL's version
        does not meet makes the request unsatisfiable."""
        a = Project("a", [Release("1.0", wheel=False, sdist=True, requires=["b"])])
        index_server.add_index(IndexSpec("corp", [a, self.B]))
        url, _ = self.file_url(index_server, "a-1.0.tar.gz")
        indexes = [index(index_server, "corp")]
        result = await resolve(client, request(f"a @ {url}"), indexes)
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        failure = await fail(client, request(f"a @ {url}", "a>=2"), indexes)
        assert failure.kind == "unsatisfiable"
        assert f"you require a @ {url} and you require a>=2" in failure.message

    async def test_static_metadata_spares_the_metadata_read(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """With ``dependency_metadata`` and a hash in the URL, the file is not even fetched."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, sha256 = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        index_server.clear_requests()
        static = (StaticMetadata(name="a", requires_dist=()),)
        req = request(f"a @ {url}#sha256={sha256}", dependency_metadata=static)
        result = await resolve(client, req, [index(index_server, "corp")])
        assert versions(result) == {"a": "1.0"}
        assert index_server.requests == []

    async def test_a_dynamic_sdist_url_needs_dependency_metadata(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An sdist URL whose dependencies are Dynamic fails, pointing at dependency_metadata;
        with it, the file is fetched only for its hash and the metadata given is used."""
        legacy = Project(
            "legacy", [Release("1.0", wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"])]
        )
        index_server.add_index(IndexSpec("corp", [legacy, self.B]))
        url, sha256 = self.file_url(index_server, "legacy-1.0.tar.gz")
        indexes = [index(index_server, "corp")]
        failure = await fail(client, request(f"legacy @ {url}"), indexes)
        [hint] = failure.hints
        assert hint.code == Code.SDIST_DYNAMIC_METADATA
        assert "dependency_metadata (name 'legacy')" in hint.message
        static = (StaticMetadata(name="legacy", requires_dist=("b",)),)
        result = await resolve(
            client, request(f"legacy @ {url}", dependency_metadata=static), indexes
        )
        assert versions(result) == {"legacy": "1.0", "b": "1.0"}
        assert next(p for p in result.packages if p.name == "legacy").file.hashes == {
            "sha256": sha256
        }

    async def test_the_outbound_guard_applies(self, index_server: IndexServer) -> None:
        """A direct URL is dialled through the outbound guard: with loopback blocked, the job
        fails naming the requirement, and the file is never requested."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, _ = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        index_server.clear_requests()
        limits = FetchLimits(retries=0, blocked_networks=("127.0.0.0/8", "::1/128"))
        async with IndexClient(limits) as guarded:
            failure = await fail(guarded, request(f"a @ {url}"), [index(index_server, "corp")])
        assert failure.kind == "metadata_error"
        assert failure.message.startswith(f"The file of the direct URL requirement a @ {url} ")
        assert index_server.requests == []

    async def test_a_url_on_no_index_of_the_job_is_fetched_anonymously(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A URL on another origin than the job's indexes is fetched as an index of its own,
        named by the URL's directory (the job's index credentials never go there)."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, _ = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        elsewhere = url.replace("127.0.0.1", "localhost")
        result = await resolve(client, request(f"a @ {elsewhere}"), [index(index_server, "corp")])
        a = next(p for p in result.packages if p.name == "a")
        assert a.index == elsewhere.rsplit("/", 1)[0] and a.file.url == elsewhere

    async def test_an_override_replaces_the_url(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An override of the name replaces the direct URL requirement, URL and all."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, _ = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        req = request(f"a @ {url}", overrides=("a>=2",))
        result = await resolve(client, req, [index(index_server, "corp")])
        assert versions(result) == {"a": "2.0", "b": "1.0"}
        assert not next(p for p in result.packages if p.name == "a").direct

    async def test_a_universal_lock_takes_the_url_too(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A universal job pins the URL's file everywhere, hashed, marked direct."""
        index_server.add_index(IndexSpec("corp", [self.A, self.B]))
        url, sha256 = self.file_url(index_server, "a-1.0-py3-none-any.whl")
        req = request(f"a @ {url}", universal=True, requires_python=">=3.10")
        result = await resolve(client, req, [index(index_server, "corp")])
        [a] = [p for p in result.packages if p.name == "a"]
        assert (a.version, a.direct, a.markers) == ("1.0", True, None)
        assert [(f.url, f.hashes) for f in a.files] == [(url, {"sha256": sha256})]


class TestRefusals:
    async def test_vcs_and_local_urls_are_refused(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """VCS URLs and local paths are refused: resolvd resolves published files only."""
        index_server.add_index(IndexSpec("corp", []))
        for line in ("a @ git+https://example.invalid/a.git", "a @ file:///tmp/a-1.0.tar.gz"):
            failure = await fail(client, request(line), [index(index_server, "corp")])
            assert failure.kind == "invalid_request" and "requirements[0]" in failure.message


class TestBacktracking:
    async def test_walking_back_fetches_the_next_versions_metadata_together(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Once a few of a project's versions have failed, the metadata of the next ones the
        search would try is fetched together, not one version per round trip. With each of
        ``top``'s metadata files answered 0.1 s late, one at a time would put a ``mid`` answer
        between every two ``top`` ones; fetched together, ``top`` answers arrive in runs."""
        top = Project("top", [Release(f"{v}.0", requires=[f"mid>={v}.0"]) for v in range(1, 31)])
        mid = Project(
            "mid",
            [Release("1.0", requires=["base<2"])]
            + [Release(f"{v}.0", requires=["base>=2"]) for v in range(2, 31)],
        )
        base = Project("base", [Release("1.0.0"), Release("2.0.0")])
        index_server.add_index(IndexSpec("corp", [top, mid, base]))
        index_server.inject("/corp/files/top-*.metadata", delay=0.1)
        resolution = await resolve(
            client, request("base==1.0.0", "top"), [index(index_server, "corp")]
        )
        assert versions(resolution) == {"base": "1.0.0", "mid": "1.0", "top": "1.0"}
        answered = [
            record.path.rpartition("/")[2].split("-")[0]
            for record in index_server.requests
            if record.path.endswith(".metadata")
        ]
        longest = run = 0
        for previous, current in itertools.pairwise(answered):
            run = run + 1 if previous == current == "top" else 0
            longest = max(longest, run)
        assert longest >= 3, answered


class TestControl:
    async def test_stop_event_cancels(self, index_server: IndexServer, client: IndexClient) -> None:
        """Setting the stop event ends the resolution with a cancelled failure."""
        index_server.add_index(IndexSpec("corp", [Project("a", [Release("1.0")])]))
        index_server.inject("/corp/simple/a/", delay=5)
        stop = threading.Event()
        stop.set()
        with pytest.raises(ResolutionFailed) as caught:
            await resolve_request(
                request("a"),
                indexes=[index(index_server, "corp")],
                client=client,
                progress=Progress(),
                stop=stop,
            )
        assert caught.value.failure.kind == "cancelled"

    async def test_deadline(self, index_server: IndexServer, client: IndexClient) -> None:
        """A resolution that outlives deadline_seconds fails as deadline_exceeded."""
        index_server.add_index(IndexSpec("corp", [Project("a", [Release("1.0")])]))
        index_server.inject("/corp/simple/a/", delay=3)
        failure = await fail(
            client, request("a", deadline_seconds=0.5), [index(index_server, "corp")]
        )
        assert failure.kind == "deadline_exceeded"
