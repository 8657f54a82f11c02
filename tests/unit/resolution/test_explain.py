"""Version sets collapse into ranges the way a person would write them."""

import pytest
from packaging.version import Version

from service.resolution.explain import format_version_set, similar_names

UNIVERSE = [Version(v) for v in ("1.0", "1.1", "2.0", "2.1", "2.2", "3.0")]


class TestFormatVersionSet:
    @pytest.mark.parametrize(
        ("chosen", "expected"),
        [
            (["1.0", "1.1", "2.0", "2.1", "2.2", "3.0"], "all versions of a"),
            (["2.0"], "a==2.0"),
            (["1.0", "1.1"], "a<=1.1"),
            (["2.2", "3.0"], "a>=2.2"),
            (["1.1", "2.0", "2.1"], "a>=1.1,<=2.1"),
            (["1.0", "2.1", "2.2"], "a==1.0 | a>=2.1,<=2.2"),
        ],
    )
    def test_ranges(self, chosen: list[str], expected: str) -> None:
        """Contiguous runs become one range; runs touching an end become one-sided."""
        assert format_version_set("a", [Version(v) for v in chosen], UNIVERSE) == expected


class TestSimilarNames:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("dateutil", ["python-dateutil", "pydateutil", "dateutils"]),
            ("python-requests", ["requests", "python-request"]),
            ("Beautiful_Soups", ["python-beautiful-soups", "pybeautiful-soups", "beautiful-soup"]),
        ],
    )
    def test_variants(self, name: str, expected: list[str]) -> None:
        """The probes are the spellings people confuse, canonicalized, at most four."""
        assert similar_names(name)[: len(expected)] == expected
        assert len(similar_names(name)) <= 4
