"""Diagnostics: the typed vocabulary every failure path ends in.

A ``Diagnostic`` carries a stable ``code`` that dashboards group by, a human ``message`` and
structured ``data``. This package also owns redaction of credentials from URLs and the human
explanation of a failed resolution. It depends on nothing else in ``service``.
"""

from service.diagnostics.model import Code, Diagnostic, Severity
from service.diagnostics.redact import redact_url

__all__ = ["Code", "Diagnostic", "Severity", "redact_url"]
