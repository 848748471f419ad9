"""The `Endpoint` value: presets, URLs, headers, models and request bodies."""

from __future__ import annotations

import pytest

from netfly_batch.errors import ModelNotSupportedError
from netfly_batch.http.endpoints import FREENETFLY, Endpoint, endpoint_for, endpoint_of
from netfly_batch.settings import BODY_DEFAULTS, ClientSettings


@pytest.mark.parametrize(
    ("base_url", "path", "url"),
    [
        ("https://free.netfly.top", None, "https://free.netfly.top/api/openai/v1/chat/completions"),
        (
            "https://free.netfly.top/",
            None,
            "https://free.netfly.top/api/openai/v1/chat/completions",
        ),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080/v1/chat/completions"),
        ("http://127.0.0.1:8080/", "chat", "http://127.0.0.1:8080/chat"),
    ],
    ids=["freenetfly", "freenetfly slash", "other", "other with path"],
)
def test_endpoint_for_picks_the_preset_by_url(base_url, path, url):
    """FreeNetfly's URL gets its preset and path; any other URL the OpenAI path."""
    endpoint = endpoint_for(base_url, path)
    assert endpoint.url == url
    assert endpoint.browser_headers is (endpoint.base_url == FREENETFLY.base_url)
    assert endpoint.working is (endpoint.base_url != FREENETFLY.base_url)


def test_only_the_preset_checks_models():
    """FreeNetfly refuses unknown models, naming the known ones; other servers take any."""
    with pytest.raises(ModelNotSupportedError, match="gpt-4"):
        FREENETFLY.resolve_model("llama-3")
    assert FREENETFLY.resolve_model(None) == "gpt-3.5-turbo"
    assert Endpoint("http://x").resolve_model("llama-3") == "llama-3"


def test_body_has_defaults_then_parameters():
    """A body carries the defaults, which the caller's parameters override."""
    body = Endpoint("http://x", stream_usage=False).build_body(
        "m", [{"role": "user", "content": "hi"}], {"temperature": 0.0, "seed": 1}
    )
    assert body == {
        **BODY_DEFAULTS,
        "messages": [{"role": "user", "content": "hi"}],
        "model": "m",
        "stream": True,
        "temperature": 0.0,
        "seed": 1,
    }


@pytest.mark.parametrize(
    ("endpoint", "params", "stream_options"),
    [
        (endpoint_for("http://x"), {}, {"include_usage": True}),
        (endpoint_for("http://x", stream_usage=False), {}, None),
        (
            endpoint_for("http://x"),
            {"stream_options": {"include_usage": False}},
            {"include_usage": False},
        ),
        (FREENETFLY, {}, None),
    ],
    ids=["asked for", "--no-stream-usage", "the line's own", "freenetfly"],
)
def test_usage_is_asked_for_in_the_stream_except_from_freenetfly(endpoint, params, stream_options):
    """Other servers get stream_options.include_usage unless told otherwise."""
    body = endpoint.build_body("gpt-4", [], params)
    assert body.get("stream_options") == stream_options


def test_headers_carry_the_key_and_extras_but_repr_hides_the_key():
    """The key goes into Authorization only; extras override; repr never shows the key."""
    endpoint = endpoint_for("http://x", api_key="sk-secret", extra_headers=(("user-agent", "me"),))
    headers = endpoint.headers()
    assert headers["authorization"] == "Bearer sk-secret"
    assert headers["user-agent"] == "me"
    assert "origin" not in headers
    assert "sk-secret" not in repr(endpoint)


def test_endpoint_of_client_settings_keeps_their_headers():
    """The Python API's ClientSettings name an endpoint: its URL, key and header choice."""
    endpoint = endpoint_of(
        ClientSettings(base_url="http://h:1/", endpoint="/chat", api_key="k", browser_headers=True)
    )
    assert endpoint.url == "http://h:1/chat"
    assert endpoint.headers()["origin"] == "http://h:1/"
    assert endpoint.models == ()
    assert endpoint_of(ClientSettings()).models == FREENETFLY.models
