"""`Endpoint`: one chat-completions server as a value: where, how to call, what it takes.

An endpoint knows its URL and path, its API key, the headers it is sent, the request
defaults every body gets and the models it accepts, and it builds request bodies and
headers. FreeNetfly is one preset (`FREENETFLY`); any other OpenAI-compatible server is
`Endpoint(base_url)`. "Is this FreeNetfly?" is decided here, by `endpoint_for`, once.
Pure: no I/O, no aiohttp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ModelNotSupportedError
from ..settings import (
    BODY_DEFAULTS,
    DEFAULT_MODEL,
    FREENETFLY_ENDPOINT,
    FREENETFLY_MODELS,
    FREENETFLY_URL,
    OPENAI_ENDPOINT,
    ClientSettings,
)

# What the original FreeNetfly provider sent: a Chrome 126 browser on Linux.
BROWSER_HEADERS: Mapping[str, str] = {
    "accept": "application/json, text/event-stream",
    "accept-language": "en-US,en;q=0.9",
    "content-type": "application/json",
    "dnt": "1",
    "sec-ch-ua": '"Not/A)Brand";v="8", "Chromium";v="126"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "sec-fetch-dest": "empty",
    "sec-fetch-mode": "cors",
    "sec-fetch-site": "same-origin",
    "user-agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    ),
}

# What any OpenAI-compatible server needs (when `browser_headers` is off).
PLAIN_HEADERS: Mapping[str, str] = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "user-agent": "netfly-batch/0.1",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One chat-completions server; build it once (`endpoint_for`) and pass it down."""

    base_url: str
    path: str = OPENAI_ENDPOINT
    api_key: str | None = field(default=None, repr=False)
    browser_headers: bool = False  # the desktop-browser set FreeNetfly was sent
    extra_headers: tuple[tuple[str, str], ...] = ()
    body_defaults: tuple[tuple[str, Any], ...] = tuple(BODY_DEFAULTS.items())
    models: tuple[str, ...] = ()  # the models it accepts; empty: any name
    default_model: str = DEFAULT_MODEL
    working: bool = True  # False: known to be down (a note is printed)
    # Ask for usage in the stream (`stream_options.include_usage`): OpenAI and vLLM send
    # it only when asked. Off for FreeNetfly, and by --no-stream-usage for servers that
    # refuse the field.
    stream_usage: bool = True
    # Most requests in flight at this endpoint (`URL#c=N`); None: the run's -c.
    in_flight_limit: int | None = None

    @property
    def public_url(self) -> str:
        """The base URL as results and logs may show it: no credentials, no query."""
        return public_url(self.base_url)

    @property
    def url(self) -> str:
        """The full chat-completions URL: base URL and path joined by one slash, before
        any query string of the base URL (Azure's `?api-version=...`)."""
        path = self.path if self.path.startswith("/") else "/" + self.path
        base, mark, query = self.base_url.partition("?")
        return base.rstrip("/") + path + mark + query

    def headers(self) -> dict[str, str]:
        """Request headers: the browser set (or the plain one), the API key, the extras."""
        if self.browser_headers:
            headers = dict(BROWSER_HEADERS)
            headers["origin"] = self.base_url
            headers["referer"] = self.base_url.rstrip("/") + "/"
        else:
            headers = dict(PLAIN_HEADERS)
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra_headers)
        return headers

    def resolve_model(self, model: str | None) -> str:
        """The model to ask for: `model` (checked when the endpoint lists its models),
        or the default; raises `ModelNotSupportedError` naming the known ones."""
        if not model:
            return self.default_model
        if self.models and model not in self.models:
            raise ModelNotSupportedError(model, list(self.models))
        return model

    def build_body(
        self, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A streamed request body: the endpoint's defaults, then the caller's parameters."""
        body: dict[str, Any] = {"messages": messages, "model": model, "stream": True}
        body.update(self.body_defaults)
        body.update(params)
        if self.stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
        return body

    def request_body(
        self, model: str | None, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`build_body` for `model` resolved (`resolve_model`: the default when None; an
        unknown one raises `ModelNotSupportedError`)."""
        return self.build_body(self.resolve_model(model), messages, params)


FREENETFLY = Endpoint(
    base_url=FREENETFLY_URL,
    path=FREENETFLY_ENDPOINT,
    browser_headers=True,
    models=FREENETFLY_MODELS,
    working=False,
    stream_usage=False,
)


def is_freenetfly(base_url: str) -> bool:
    """True for the FreeNetfly service's URL (with or without a trailing slash)."""
    return base_url.rstrip("/") == FREENETFLY.base_url


def endpoint_for(
    base_url: str = FREENETFLY_URL,
    path: str | None = None,
    *,
    api_key: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
    stream_usage: bool = True,
) -> Endpoint:
    """The endpoint at `base_url`: the FreeNetfly preset for its URL, else a plain
    OpenAI-compatible server (path `/v1/chat/completions` unless `path` says, usage
    asked for in the stream unless `stream_usage` is False)."""
    base_url = base_url.rstrip("/")
    if is_freenetfly(base_url):
        return replace(
            FREENETFLY, path=path or FREENETFLY.path, api_key=api_key, extra_headers=extra_headers
        )
    return Endpoint(
        base_url,
        path or OPENAI_ENDPOINT,
        api_key=api_key,
        extra_headers=extra_headers,
        stream_usage=stream_usage,
    )


def public_url(url: str) -> str:
    """`url` without user, password, query string and fragment (never raises: a URL
    that does not parse shows its scheme and host alone)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class EndpointListError(ValueError):
    """A --base-url list that cannot be used; the message says why (never a password)."""


_LIMIT = re.compile(r"c=([0-9]+)")
# URLs in one value are split by white space, or by a comma that a URL follows (a comma
# inside a query string stays).
_BETWEEN_URLS = re.compile(r"\s+|\s*,\s*(?=https?://)")


def parse_base_urls(values: Iterable[str]) -> list[tuple[str, int | None]]:
    """--base-url values (each may hold several, split by commas or spaces) as
    `(url, in-flight limit or None)`; `URL#c=N` sets the limit of one endpoint."""
    entries: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    for value in values:
        for item in _BETWEEN_URLS.split(value.strip().strip(",")):
            if item:
                url, limit = _url_and_limit(item)
                if url in seen:
                    raise EndpointListError(f"{public_url(url)} is given twice")
                seen.add(url)
                entries.append((url, limit))
    return entries


def _url_and_limit(item: str) -> tuple[str, int | None]:
    """One `URL[#c=N]`, checked; errors show the URL without its credentials."""
    url, mark, fragment = item.rpartition("#") if "#" in item else (item, "", "")
    url = url.rstrip("/")
    shown = public_url(url) or "the URL"
    if not re.match(r"^https?://[^/]", url):
        raise EndpointListError(f"{shown} must start with http:// or https://")
    try:
        urlsplit(url).port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise EndpointListError(f"{shown}: the port is not a number from 0 to 65535") from None
    if not mark:
        return url, None
    match = _LIMIT.fullmatch(fragment)
    if match is None or int(match.group(1)) < 1:
        raise EndpointListError(
            f"{shown}: after # only c=N (most requests in flight there, N >= 1) is understood"
            " (a # in a password is written %23)"
        )
    return url, int(match.group(1))


def endpoint_of(settings: ClientSettings) -> Endpoint:
    """The endpoint that `ClientSettings`' own fields name (the Python API's way): the
    preset's models when the URL is FreeNetfly's, the settings' own headers always."""
    return replace(
        endpoint_for(settings.base_url, settings.endpoint),
        base_url=settings.base_url,
        api_key=settings.api_key,
        browser_headers=settings.browser_headers,
        extra_headers=settings.extra_headers,
    )
