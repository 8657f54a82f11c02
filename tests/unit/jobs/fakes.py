"""Moved to ``tests.support.scripted``; this re-export keeps older imports working."""

from tests.support.scripted import SECRET, ScriptedResolver, make_resolution

__all__ = ["SECRET", "ScriptedResolver", "make_resolution"]
