"""Things a config chooses by name — trainers, memories, backbones, data sets — in one small class,
so each kind is registered, listed and refused the same way."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .loader import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """`what`: the kind, as the error says it ("trainer"); `key`: the config key that names one
    ("trainer"); `error`: the exception an unknown name raises (a ConfigError unless the kind has its own)."""

    def __init__(self, what: str, key: str, error: type[Exception] = ConfigError):
        self.what, self.key, self.error = what, key, error
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding its object under `name`; a name is registered once."""
        def add(obj: T) -> T:
            self.add(name, obj)
            return obj
        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered as `name`; an unknown name is one sentence with the closest names."""
        if name not in self._items:
            close = difflib.get_close_matches(str(name).lower(), self._items, n=3, cutoff=0.4)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise self.error(f"unknown {self.what} {name!r} ({self.key}){hint}; choose one of "
                             f"{', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
