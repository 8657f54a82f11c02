"""A resolution against a previous lock: its ``changes``, each with why a locked pin moved.

``make_changes`` compares the lock's entries for the target with what was resolved
(``service.resolution.changes``), then gives each package that moved off its lock the reason the
search actually met, in this order: the request lifted it (``upgrade``, ``upgrade_packages``);
the locked version is gone from the index; the finder passed it over (yanked, an ignored error
status, Requires-Python, no usable file, the ``exclude_newer`` cutoff); pre-releases are banned
for it; a requirement of the final resolution (the request's, a constraint's, or a resolved
package's) excludes it; one of its own dependencies conflicts with what was resolved. A package
that moved for none of these reasons is said to be "no longer compatible with the other pins".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.redact import redact_url
from service.resolution.candidates import Candidate, SpecifierRequirement, split_identifier
from service.resolution.changes import diff_packages, same_index
from service.resolution.environment import TargetEnvironment
from service.resolution.finder import Finder
from service.resolution.preferences import iter_applicable, upgraded_names
from service.resolution.request import LockedFile, LockedPackage, ResolveRequest
from service.resolution.result import PackageChange, Reason, VersionRejection

__all__ = ["make_changes"]

# How each reason the finder records reads as why a locked version could not stay.
_REJECTION_REASONS: Mapping[Reason, str] = {
    Reason.REQUIRES_PYTHON: "{version} requires Python {detail}",
    Reason.EXCLUDE_NEWER: "{version} was uploaded after the exclude_newer cutoff",
    Reason.NO_COMPATIBLE_WHEELS: "{version} has no file for this target",
    Reason.NO_BINARY: "{version} has only wheels, and no_binary refuses them",
    Reason.ONLY_BINARY: "{version} has no wheel, and only_binary requires one",
    Reason.SDIST_DYNAMIC_METADATA: "{version} has only an sdist whose metadata is dynamic",
    Reason.INVALID_METADATA: "{version} declares invalid metadata",
    Reason.INCONSISTENT_METADATA: "{version}'s metadata does not match the file it came in",
}


def _locked_result(candidates: Sequence[Candidate]) -> list[LockedPackage]:
    return [
        LockedPackage(
            name=candidate.name,
            version=str(candidate.version),
            index=redact_url(candidate.index.url).rstrip("/"),
            files=(
                LockedFile(
                    filename=candidate.file.filename,
                    url=redact_url(candidate.file.url),
                    hashes=dict(candidate.file.hashes),
                ),
            ),
        )
        for candidate in candidates
        if not candidate.extras
    ]


def _describe_rejection(name: str, rejection: VersionRejection) -> str:
    version = f"{name} {rejection.version}"
    if rejection.reason == Reason.YANKED:
        why = f" ({rejection.detail})" if rejection.detail else ""
        return f"{version} is now yanked{why}"
    if rejection.status is not None:
        return f"the index {rejection.index} answered {rejection.status} for {version}"
    if rejection.reason == Reason.EXCLUDE_NEWER and rejection.detail is None:
        return f"{version} has no upload time, which the exclude_newer cutoff excludes"
    template = _REJECTION_REASONS.get(rejection.reason, "{version} cannot be used: {reason}")
    return template.format(version=version, detail=rejection.detail, reason=rejection.reason)


class _Explainer:
    """Why each locked pin that moved could not stay, from what the resolution recorded."""

    def __init__(
        self,
        request: ResolveRequest,
        target: TargetEnvironment,
        finder: Finder,
        mapping: Mapping[str, Candidate],
        criteria: Mapping[str, Any],
    ) -> None:
        self._request = request
        self._target = target
        self._finder = finder
        self._criteria = criteria
        self._lifted = upgraded_names(request)
        self._overridden = {canonicalize_name(Requirement(line).name) for line in request.overrides}
        self._chosen = {c.name: c.version for c in mapping.values() if not c.extras}

    def why(
        self, change: PackageChange, locked: LockedPackage, resolved: LockedPackage | None
    ) -> str | None:
        """The reason ``change`` moved ``locked`` to ``resolved``; ``None`` for no move."""
        name = change.name
        if change.kind in ("added", "removed"):
            return None
        if self._request.upgrade or name in self._lifted:
            return "upgrade requested"
        if change.kind == "replaced" and resolved is not None:
            return self._why_replaced(name, locked, resolved) or change.reason
        version = Version(locked.version)
        return (
            self._why_unavailable(name, version)
            or self._why_prerelease(name, version)
            or self._why_excluded(name, version)
            or self._why_dependencies(name, version)
            or f"{name} {version} is no longer compatible with the other pins"
        )

    def _why_replaced(
        self, name: str, locked: LockedPackage, resolved: LockedPackage
    ) -> str | None:
        if same_index(locked.index, resolved.index) is False:
            versions = self._finder.known_versions.get(name)
            missing = versions.missing_on if versions else []
            if any(same_index(locked.index, redact_url(index.url)) for index in missing):
                return f"the index {locked.index} no longer has {name}"
            return None
        files = ", ".join(file.filename or file.url or "?" for file in locked.files)
        return f"the locked file {files} is no longer offered or usable for this target"

    def _why_unavailable(self, name: str, version: Version) -> str | None:
        versions = self._finder.known_versions.get(name)
        if versions is not None and all(e.version != version for e in versions.entries):
            where = ", ".join(index.display_name for index in versions.found_on) or "the index"
            return f"{name} {version} is no longer offered by {where}"
        rejection = self._finder.records.rejections.get(name, {}).get(str(version))
        return _describe_rejection(name, rejection) if rejection else None

    def _why_prerelease(self, name: str, version: Version) -> str | None:
        mode = self._request.prerelease
        if version.is_prerelease and mode in ("disallow", "explicit"):
            return f"{name} {version} is a pre-release, and prerelease is {mode!r}"
        return None

    def _applies(self, requirement: Requirement) -> bool:
        marker = requirement.marker
        return marker is None or marker.evaluate({**self._target.markers, "extra": ""})

    def _why_excluded(self, name: str, version: Version) -> str | None:
        for line in self._request.constraints:
            constraint = Requirement(line)
            if (
                canonicalize_name(constraint.name) == name
                and self._applies(constraint)
                and not constraint.specifier.contains(version, prereleases=True)
            ):
                return f"{name} {version} no longer satisfies the constraint {line}"
        for identifier, criterion in self._criteria.items():
            if split_identifier(identifier)[0] != name:
                continue
            for information in criterion.information:
                requirement, parent = information.requirement, information.parent
                if not isinstance(requirement, SpecifierRequirement) or requirement.contains(
                    version
                ):
                    continue
                wanted = requirement.format_for_error()
                if parent is None:
                    return f"{name} {version} no longer satisfies the requirement {wanted}"
                if self._chosen.get(parent.name) == parent.version:
                    return (
                        f"{name} {version} no longer satisfies {parent.name} {parent.version}'s "
                        f"{wanted}"
                    )
        return None

    def _why_dependencies(self, name: str, version: Version) -> str | None:
        for dependency in self._finder.records.dependencies.get((name, str(version)), []):
            other = canonicalize_name(dependency.name)
            chosen = self._chosen.get(other)
            if (
                chosen is not None
                and other not in self._overridden
                and self._finder.applies(dependency)
                and not dependency.specifier.contains(chosen, prereleases=True)
            ):
                return f"{name} {version} requires {dependency}, but {other} {chosen} was needed"
        return None


def make_changes(
    request: ResolveRequest,
    target: TargetEnvironment,
    finder: Finder,
    mapping: Mapping[str, Candidate],
    criteria: Mapping[str, Any],
) -> list[PackageChange]:
    """What moved from ``request.lock`` (its entries for ``target``) to the resolution
    (resolvelib's ``mapping`` and ``criteria``), each move off a locked pin with its reason."""
    assert request.lock is not None
    before = list(iter_applicable(request.lock, target))
    after = _locked_result(list(mapping.values()))
    explainer = _Explainer(request, target, finder, mapping, criteria)
    changes = []
    for change in diff_packages(before, after):
        locked = _find(before, change.name, change.from_)
        reason = change.reason
        if locked is not None:
            reason = explainer.why(change, locked, _find(after, change.name, change.to))
        changes.append(msgspec.structs.replace(change, reason=reason))
    return changes


def _find(entries: Sequence[LockedPackage], name: str, version: str | None) -> LockedPackage | None:
    return next((e for e in entries if e.name == name and e.version == version), None)
