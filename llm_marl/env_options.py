"""The keyword options an env factory takes, to name a mistyped one (``num_turn``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["factory_options", "unknown_option_error"]

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def factory_options(factory: Callable[..., Any]) -> list[str]:
    """Keyword names ``factory`` accepts; for a class, those of every ``__init__`` up its
    bases that passes ``**kwargs`` on (as the env base classes do)."""
    functions: list[Any] = [factory]
    if inspect.isclass(factory):  # each class's own __init__, most derived first
        functions = [vars(c)["__init__"] for c in inspect.getmro(factory) if "__init__" in vars(c)]
    names: list[str] = []
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # a builtin such as object.__init__
            break
        names += [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


def unknown_option_error(
    env_id: str, factory: Callable[..., Any], kwargs: Mapping[str, Any], error: TypeError
) -> TypeError | None:
    """A ``TypeError`` naming the mistyped option of ``error`` and the closest known one, or
    None when ``error`` is not about one of ``kwargs``."""
    import difflib

    found = _UNEXPECTED.search(str(error))
    if found is None or found.group(1) not in kwargs:
        return None
    known = [n for n in factory_options(factory) if n not in kwargs]
    close = difflib.get_close_matches(found.group(1), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f" (its options: {', '.join(factory_options(factory))})" if known else ""
    return TypeError(f"{env_id} has no option {found.group(1)!r}{hint}{listed}")
