"""resolvd: Python dependency resolution as an HTTP service.

Packages depend one way: ``api`` -> ``jobs`` -> ``resolution`` -> ``index``; ``diagnostics``
and ``settings`` are leaves every layer may use.
"""
