"""Route handlers, one controller per resource: ``/resolve``, ``/jobs``, ``/indexes``, health."""
