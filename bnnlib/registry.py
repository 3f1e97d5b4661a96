"""A tiny name → object registry, so configs can say ``"sign"`` or ``"DFA"``.

Every lookup of an unknown name raises a :class:`ValueError` that names the bad value and
lists the accepted ones, so a typo in a config fails before any compute starts.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind (activations, weight binarisers, trainers)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@ACTIVATIONS.register("sign")``. The name is written once, here: the
        registered object gets it as its ``name`` attribute."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            obj.name = name
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; accepted: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)
