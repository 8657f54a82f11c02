"""Version sets collapse into ranges the way a person would write them."""

import pytest
from packaging.version import Version

from service.resolution.explain import format_version_set

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
