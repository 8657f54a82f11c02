"""Explain a failed resolution from what the search learned.

resolvelib reports the requirements that could not be satisfied together (its ``causes``); the
finder recorded every version it passed over and why. From both this package derives a report
in the spirit of uv's ("Because … and …, we can conclude that …"), the structured ``causes``,
and hints with stable codes. It is split by role, as pip splits its resolver glue:

- ``facts``: the ``Search`` protocol (what the explanation reads from the finder) and ``Facts``,
  the questions it asks of those records;
- ``phrasing``: how versions, version sets and reasons are worded (pure functions);
- ``hints``: the coded hints, including the budgeted probes of pages the search never needed;
- ``derivation``: the clauses and the paragraph for each package;
- ``report``: ``explain_failure``, which puts them together into a ``Failure``.

It lives in ``resolution`` rather than ``diagnostics`` because it reads the resolver's own
records; ``diagnostics`` stays a leaf. It touches the network only through
``Search.find_page_on``.
"""

from service.resolution.explain.report import explain_failure

__all__ = ["explain_failure"]
