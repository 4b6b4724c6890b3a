"""API Gateway HTTP API route selection, as documented ("Routing API requests" in the HTTP API
developer guide): the most specific match wins.

1. A full match of path and method: a route without a greedy variable, path variables such as
   {model_name} included; a static segment beats a variable one, a route's own method beats ANY.
2. A route with a greedy variable ({proxy+}, at the end, one or more segments): the one with
   the longest path before it wins (what "most specific" means among greedy routes, and how
   AWS's own local emulator, Amazon.Lambda.TestTool, orders them), its own method before ANY.
3. `$default`.

Nothing matching means API Gateway itself answers 404 {"message":"Not Found"}.
"""

from __future__ import annotations


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _match(route_path: str, path: str) -> tuple[int, int, int] | None:
    """None, or the route's rank key for this path: (greedy?, -length before greedy, variables)."""
    route, request = _segments(route_path), _segments(path)
    greedy = bool(route) and route[-1].endswith("+}")
    fixed = route[:-1] if greedy else route
    if greedy:
        if len(request) <= len(fixed):
            return None
    elif len(request) != len(fixed):
        return None
    variables = 0
    for want, got in zip(fixed, request):
        if want.startswith("{") and want.endswith("}"):
            variables += 1
        elif want != got:
            return None
    return (1 if greedy else 0, -len(fixed), variables)


def select(routes: dict[str, str], request: str) -> str | None:
    """The target of the route that takes `request` ("GET /path"), or None (API Gateway 404)."""
    method, path = request.split(" ", 1)
    best: list[tuple[tuple[int, int, int, int], str, str]] = []
    for key, target in routes.items():
        if key == "$default":
            continue
        route_method, route_path = key.split(" ", 1)
        if route_method not in ("ANY", method):
            continue
        rank = _match(route_path, path)
        if rank is None:
            continue
        best.append(((*rank, 1 if route_method == "ANY" else 0), key, target))
    if best:
        best.sort()
        top = [b for b in best if b[0] == best[0][0]]
        if len({t for _, _, t in top}) > 1:
            raise ValueError(f"{request}: equally specific routes {[k for _, k, _ in top]}")
        return best[0][2]
    return routes.get("$default")


def check(routes: dict[str, str], samples: dict[str, str], what: str) -> list[str]:
    problems = []
    for request, want in samples.items():
        try:
            got = select(routes, request)
        except ValueError as e:
            problems.append(f"{what}: {e}")
            continue
        if got != want:
            reached = got or 'API Gateway\'s own 404 {"message":"Not Found"}'
            problems.append(f"{what}: {request} reaches {reached}, not {want}")
    return problems
