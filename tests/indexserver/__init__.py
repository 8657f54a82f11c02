"""A real PyPI-style simple index on loopback, for tests and the conformance runner.

``model`` describes what an index publishes (``IndexSpec`` → ``Project`` → ``Release``),
``artifacts`` turns that into real wheels, sdists and METADATA bytes, ``pages`` renders and
negotiates the PEP 503 / PEP 691 pages, and ``server`` serves it all over HTTP with failure
injection and a request log. Nothing here imports ``service``: the index is the far side of the
network edge, and must not share code with the client it tests.
"""

from tests.indexserver.model import IndexSpec, Project, Release
from tests.indexserver.server import IndexServer, RequestRecord

__all__ = ["IndexServer", "IndexSpec", "Project", "Release", "RequestRecord"]
