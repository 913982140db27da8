"""A vendor's routes as data: method, path pattern, and the endpoint name it counts under."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .base import RecordedRequest


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # a regex with named groups, matched against the whole path
    name: str  # "objects/{type}/batch/upsert": groups filled in (normalized) for counting
    auth: bool = False  # a token endpoint: no Bearer, not an API call

    def compiled(self) -> re.Pattern[str]:
        return _compile(self.pattern)


_cache: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str) -> re.Pattern[str]:
    found = _cache.get(pattern)
    if found is None:
        found = _cache[pattern] = re.compile(pattern)
    return found


def match(
    routes: Sequence[Route],
    request: RecordedRequest,
    normalize: Callable[[str, str], str] = lambda _name, value: value,
) -> Route | None:
    """The first route of ``request``; fills ``params``, ``endpoint`` and ``auth_endpoint``.

    ``normalize(group, value)`` canonicalizes a path parameter (``0-1`` → ``contacts``).
    """
    for route in routes:
        if route.method != request.method:
            continue
        found = route.compiled().fullmatch(request.path)
        if found is None:
            continue
        params = {k: normalize(k, v) for k, v in found.groupdict().items() if v is not None}
        request.params = params
        request.route_name = route.name
        request.auth_endpoint = route.auth
        shown = {k: params.get(k, "{" + k + "}") for k in re.findall(r"{(\w+)}", route.name)}
        request.endpoint = f"{request.method} {route.name.format(**shown)}"
        return route
    request.endpoint = f"{request.method} {request.path}"
    return None
