"""Name -> factory registries filled through the plugin hooks.

Each hook receives a ``register`` callback bound to one of these registries, so
built-ins and third-party plugins go through the same door. A duplicate name is
an error (silently replacing a backbone would change results); an unknown name
raises :class:`~fpattr.errors.RegistryError` with close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fpattr.errors import RegistryError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with where it came from."""

    name: str
    obj: T
    plugin: str
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """An ordered mapping of names to objects, with provenance."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, obj: T, *, plugin: str, description: str = "", **meta: Any) -> None:
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            prev = self._entries[name].plugin
            raise RegistryError(
                f"{self.kind} {name!r} from plugin {plugin!r} is already registered by {prev!r}"
            )
        self._entries[name] = Entry(name, obj, plugin, description, dict(meta))

    def callback(self, plugin: str) -> Callable[..., None]:
        """A ``register(name, obj, description=..., **meta)`` callback for one plugin."""

        def register(name: str, obj: T, description: str = "", **meta: Any) -> None:
            self.add(name, obj, plugin=plugin, description=description, **meta)

        return register

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(self._entries) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)
