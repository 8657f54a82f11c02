"""The HTTP API: Litestar app factory, controllers, wire schemas and problem details.

This package is the only one that knows about HTTP. It decodes and validates request bodies
(``schemas``, ``validation``), turns every error into an RFC 9457 problem document from one
table (``problems``), identifies the calling client (``auth``) and exposes jobs through the
controllers. It may import ``service.jobs`` (to store, queue, read and cancel jobs),
``service.resolution``'s request types and its ``make_indexes``/environment checks (to validate
before anything is queued), ``service.diagnostics`` and ``service.settings``. It never parses
package METADATA or talks to an index: that is ``service.resolution`` and ``service.index``,
reached only through a worker.
"""

from service.api.app import create_app

__all__ = ["create_app"]
