"""``mypyc_attr``: class attributes for the mypyc compiler, without a runtime dependency.

The engine needs nothing outside the standard library, so ``mypy_extensions``
(which the compiler brings along) is imported for the type checker and mypyc
only. Interpreted, the decorator is a no-op; compiled, mypyc reads it at
build time and never calls it.

The engine marks ``acyclic=True`` on the classes it makes on every command
(events, orders, levels). Their instances are then not tracked by the
cyclic garbage collector: no GC header, no GC bookkeeping on allocation and
free, and no collections triggered or lengthened by resting orders. That is
sound only for a class whose instances can never be part of a reference
cycle, which is why an ``Order`` names its trader instead of pointing at the
``Account`` whose dictionaries hold it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

__all__ = ["mypyc_attr"]

_C = TypeVar("_C")

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:

    def mypyc_attr(**_attrs: object) -> Callable[[_C], _C]:
        return _identity

    def _identity(cls: _C) -> _C:
        return cls
