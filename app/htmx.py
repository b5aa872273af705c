"""htmx helpers: one URL serves a full page or just the fragment an htmx request swaps in."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_partial(page: str, partial: str, **context: Any) -> str:
    """The full page for a normal request, the fragment for an htmx one (the page includes it)."""
    return render_template(partial if is_htmx() and not is_boosted() else page, **context)


def is_boosted() -> bool:
    return request.headers.get("HX-Boosted") == "true"


def hx_redirect(url: str) -> Response:
    """Redirect an htmx request by navigating the whole page rather than swapping the target."""
    resp = make_response("", 204)
    resp.headers["HX-Redirect"] = url
    return resp


def add_vary_header(response: Response) -> Response:
    # Caches must not serve a fragment where a page was asked for, or the reverse.
    response.vary.add("HX-Request")
    return response
