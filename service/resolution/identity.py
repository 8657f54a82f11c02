"""Answers about shared objects, remembered by the objects' identity.

Jobs meet the same objects again (a cached page's version tuple, a parsed Requires-Dist line),
and some answers about them cost a pass over their contents. Keying by ``id`` avoids hashing
the object; keeping the object alive beside its answer means an ``id`` is never reused while
it is remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["IdentityMemo"]

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """``make(obj)`` for the ``size`` most recently asked-about objects. Locked: the resolver
    threads of concurrent jobs share it (two may both make an answer; they are equal)."""

    def __init__(self, make: Callable[[K], V], size: int) -> None:
        self._make = make
        self._size = size
        self._entries: OrderedDict[int, tuple[K, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, obj: K) -> V:
        key = id(obj)
        with self._lock:
            known = self._entries.get(key)
            if known is not None and known[0] is obj:
                self._entries.move_to_end(key)
                return known[1]
        value = self._make(obj)
        with self._lock:
            self._entries[key] = (obj, value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
