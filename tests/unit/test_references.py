"""What the code points a reader to exists: every document named in ``service/`` is in the repo."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_DOCUMENT = re.compile(r"[\w./-]+\.md\b")


def test_every_document_the_code_names_is_in_the_repository() -> None:
    """A docstring or comment naming ``X.md`` names a file the repository holds."""
    named = {
        (source.relative_to(ROOT), document)
        for source in sorted((ROOT / "service").rglob("*.py"))
        for document in _DOCUMENT.findall(source.read_text(encoding="utf-8"))
    }
    held = {path.name for path in ROOT.rglob("*.md") if ".venv" not in path.parts}
    missing = sorted(
        f"{source}: {document}" for source, document in named if Path(document).name not in held
    )
    assert missing == []
