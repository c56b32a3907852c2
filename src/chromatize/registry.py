"""Tiny name -> factory registries, so a new model or loss is one file plus one line.

>>> MODELS = Registry("model")
>>> @MODELS.register("unet_tiny")
... def unet_tiny(**kw): ...
>>> model = MODELS.create("unet_tiny", base=8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """A named table of factories. Unknown names fail loudly, listing what is known."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator: register ``fn`` under ``name`` (default: the function's name)."""

        def deco(fn: F) -> F:
            key = name or fn.__name__
            if key in self._table:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._table[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._table[name]
        except KeyError:
            known = ", ".join(sorted(self._table)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the factory registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table
