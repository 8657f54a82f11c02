"""Conformance against the packse scenario corpus: ``scenarios`` loads it, ``run`` drives the
service (a real subprocess) against one loopback ``IndexServer`` serving every scenario.
"""
