"""What the tests share, one helper in one place (import from the modules, not from conftests).

- ``processes``: free ports, ``Service`` (a started process in a session of its own, stopped
  SIGTERM-then-SIGKILL), ``wait_until``/``wait_http_ready``, ``find_executable``.
- ``redis``: the configured test URL (``RESOLVD_TEST_REDIS_URL``), ``RedisServer`` (throwaway
  redis-servers), ``serving_redis``, ``flush_db``.
- ``settings``: ``make_test_settings``. ``scripted``: ``ScriptedResolver``.
- ``cluster``: ``Cluster``, real ``serve``/``worker`` processes for end-to-end tests.
- ``api``: the in-process API client types and ``count_queued``.
- ``health``: ``HealthProbe``, polling ``/healthz`` in a thread and keeping every latency.
- ``fixtures``: the pytest plugin the root conftest loads (``redis_url``, ``clean_redis``,
  ``redis_client``, ``settings``, ``resolver``).
- ``ensure-tools.sh``: installs the Debian packages the suite drives (``make test-tools``).
"""
