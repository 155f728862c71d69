"""``Record``: the base of commands, events and query views.

Records are plain classes with an explicit ``__init__`` (compiled, that is a
native constructor; a dataclass's generated ``__init__`` would stay
interpreted) and get value equality, a readable ``repr`` and ``as_dict`` from
their ``FIELDS``. They are treated as immutable everywhere.
"""

from __future__ import annotations

from typing import ClassVar

from engine.native import mypyc_attr


@mypyc_attr(acyclic=True)
class Record:
    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return all(getattr(self, name) == getattr(other, name) for name in self.FIELDS)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, name) for name in self.FIELDS)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({inner})"
