"""Client construction, configuration, headers, URLs, with_options, closing (MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

import chamelaion
from chamelaion import AsyncChamelaion, Chamelaion, ChamelaionError, Input
from sdk.helpers import (
    API_KEY,
    BASE_URL,
    Script,
    async_client,
    generated,
    request_json,
    sync_client,
)

INPUTS: list[Input] = [
    {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"},
    {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"},
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAMELAION_API_KEY", raising=False)
    monkeypatch.delenv("CHAMELAION_BASE_URL", raising=False)


@pytest.mark.parametrize("cls", [Chamelaion, AsyncChamelaion])
def test_missing_api_key_fails_at_construction(cls: type[Chamelaion]) -> None:
    with pytest.raises(ChamelaionError, match="CHAMELAION_API_KEY"):
        cls()


@pytest.mark.parametrize("cls", [Chamelaion, AsyncChamelaion])
def test_empty_api_key_is_missing(cls: type[Chamelaion], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAMELAION_API_KEY", "")
    with pytest.raises(ChamelaionError):
        cls()


def test_key_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAMELAION_API_KEY", "env-key")
    monkeypatch.setenv("CHAMELAION_BASE_URL", "http://localhost:8123/api")
    client = Chamelaion()
    assert client.api_key == "env-key"
    assert str(client.base_url) == "http://localhost:8123/api"


def test_default_base_url() -> None:
    client = Chamelaion(api_key="k")
    assert str(client.base_url) == "https://api.chamelaion.com/api"
    assert client.max_retries == 2


def test_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAMELAION_API_KEY", "env-key")
    monkeypatch.setenv("CHAMELAION_BASE_URL", "http://env.test/api")
    client = Chamelaion(api_key="arg-key", base_url="http://arg.test/api")
    assert client.api_key == "arg-key"
    assert str(client.base_url) == "http://arg.test/api"


@pytest.mark.parametrize("bad", ["api.chamelaion.com", "ftp://x.test/api", "/api"])
def test_base_url_must_be_absolute_http(bad: str) -> None:
    with pytest.raises(ChamelaionError, match="base_url"):
        Chamelaion(api_key="k", base_url=bad)


def test_negative_max_retries_rejected() -> None:
    with pytest.raises(ValueError):
        Chamelaion(api_key="k", max_retries=-1)


def test_repr_does_not_show_the_key() -> None:
    client = Chamelaion(api_key="secret-value")
    assert "secret-value" not in repr(client)


@pytest.mark.parametrize(
    "base_url",
    ["http://api.test/api", "http://api.test/api/"],
)
def test_generate_request_shape(base_url: str) -> None:
    script = Script(generated())
    client = sync_client(script, base_url=base_url)
    job = client.lipsync.generate(inputs=INPUTS, reference_id="dub-episode-42")
    assert job.request_id == "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
    assert job.status == "success"
    (req,) = script.requests
    assert req.method == "POST"
    assert str(req.url) == "http://api.test/api/v1/lipsync/generate"
    assert req.headers["x-api-key"] == API_KEY
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == f"chamelaion-python/{chamelaion.__version__}"
    assert req.headers["user-agent"] == "chamelaion-python/0.1.0"
    assert "authorization" not in req.headers
    assert json.loads(req.content) == {"inputs": INPUTS, "reference_id": "dub-episode-42"}


def test_generate_sends_every_option_and_omits_unset_ones() -> None:
    script = Script(generated(), generated())
    client = sync_client(script)
    client.lipsync.generate(
        inputs=iter(INPUTS),  # any iterable
        disable_active_speaker_detection=False,
        reference_id="r",
        model="lipsync-2",
        sync_mode="bounce",
        transcript="Bonjour à tous",
        transcript_language="fr-FR",
        speaker={"frame": 12, "x": 0.25, "y": 0.5},
    )
    client.lipsync.generate(inputs=INPUTS)
    assert json.loads(script.requests[0].content) == {
        "inputs": INPUTS,
        "disable_active_speaker_detection": False,
        "reference_id": "r",
        "model": "lipsync-2",
        "sync_mode": "bounce",
        "transcript": "Bonjour à tous",
        "transcript_language": "fr-FR",
        "speaker": {"frame": 12, "x": 0.25, "y": 0.5},
    }
    assert json.loads(script.requests[1].content) == {"inputs": INPUTS}


def test_generate_rejects_a_single_dict_as_inputs() -> None:
    client = sync_client(Script())
    with pytest.raises(TypeError):
        single: Input = {"type": "video", "url": "x"}
        client.lipsync.generate(inputs=single)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ident", "path"),
    [
        (
            "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8",
            "/api/v1/lipsync/requests/6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8",
        ),
        ("dub/episode 42?x", "/api/v1/lipsync/requests/dub%2Fepisode%2042%3Fx"),
    ],
)
def test_retrieve_escapes_the_id(ident: str, path: str) -> None:
    script = Script(httpx.Response(200, json=request_json()))
    sync_client(script).lipsync.requests.retrieve(ident)
    assert script.requests[0].url.raw_path.decode() == path
    assert script.requests[0].method == "GET"


def test_retrieve_rejects_empty_id() -> None:
    with pytest.raises(ValueError):
        sync_client(Script()).lipsync.requests.retrieve("")


def test_list_query_parameters() -> None:
    page = {"data": [], "pagination": {"limit": 5, "offset": 10, "total": 0}}
    script = Script(httpx.Response(200, json=page), httpx.Response(200, json=page))
    client = sync_client(script)
    client.lipsync.requests.list(limit=5, offset=10, reference_id="batch-2026-04")
    client.lipsync.requests.list()
    assert dict(script.requests[0].url.params) == {
        "limit": "5",
        "offset": "10",
        "reference_id": "batch-2026-04",
    }
    assert str(script.requests[0].url).startswith("http://api.test/api/v1/lipsync/requests?")
    assert dict(script.requests[1].url.params) == {}


def test_default_headers_and_extra_headers() -> None:
    script = Script(httpx.Response(200, json=request_json()))
    client = sync_client(script, default_headers={"x-team": "dubbing"})
    client.lipsync.requests.retrieve("x", extra_headers={"x-trace": "t1"})
    headers = script.requests[0].headers
    assert headers["x-team"] == "dubbing"
    assert headers["x-trace"] == "t1"
    assert headers["x-api-key"] == API_KEY


def test_default_headers_cannot_replace_the_key() -> None:
    script = Script(httpx.Response(200, json=request_json()))
    sync_client(script, default_headers={"x-api-key": "other"}).lipsync.requests.retrieve("x")
    assert script.requests[0].headers.get_list("x-api-key") == [API_KEY]


def test_timeout_is_sent_per_request_and_overridable() -> None:
    script = Script(*(httpx.Response(200, json=request_json()) for _ in range(3)))
    client = sync_client(script, timeout=7.0)
    client.lipsync.requests.retrieve("x")
    client.lipsync.requests.retrieve("x", timeout=2.5)
    client.with_options(timeout=httpx.Timeout(3.0, connect=1.0)).lipsync.requests.retrieve("x")
    timeouts = [r.extensions["timeout"] for r in script.requests]
    assert timeouts[0]["read"] == 7.0
    assert timeouts[1]["read"] == 2.5
    assert timeouts[2] == {"connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_with_options_copies_and_shares_the_pool() -> None:
    script = Script(httpx.Response(200, json=request_json()))
    client = sync_client(script, timeout=9.0, max_retries=4)
    copy = client.with_options(max_retries=0)
    assert isinstance(copy, Chamelaion)
    assert copy.max_retries == 0 and client.max_retries == 4
    assert copy.timeout == 9.0
    assert copy.api_key == client.api_key and copy.base_url == client.base_url
    assert copy._client is client._client
    copy.close()  # the copy does not own the pool
    assert not client.is_closed
    copy.lipsync.requests.retrieve("x")
    assert script.count == 1


def test_context_manager_closes_an_owned_pool() -> None:
    with Chamelaion(api_key="k") as client:
        assert not client.is_closed
    assert client.is_closed


def test_a_passed_in_http_client_is_not_closed() -> None:
    http = httpx.Client()
    with Chamelaion(api_key="k", http_client=http):
        pass
    assert not http.is_closed
    http.close()


def test_http_client_type_is_checked() -> None:
    with pytest.raises(TypeError):
        Chamelaion(api_key="k", http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AsyncChamelaion(api_key="k", http_client=httpx.Client())  # type: ignore[arg-type]


async def test_async_client_same_requests() -> None:
    script = Script(
        generated(),
        httpx.Response(200, json=request_json(reference_id="dub-episode-42")),
    )
    async with async_client(script) as client:
        job = await client.lipsync.generate(inputs=INPUTS, sync_mode="loop")
        req = await client.lipsync.requests.retrieve(job.request_id)
    assert client.is_closed is False  # passed-in http client stays open
    assert req.reference_id == "dub-episode-42"
    assert json.loads(script.requests[0].content) == {"inputs": INPUTS, "sync_mode": "loop"}
    assert script.requests[0].headers["x-api-key"] == API_KEY
    assert str(script.requests[1].url) == (
        f"{BASE_URL}/v1/lipsync/requests/6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
    )


async def test_async_context_manager_closes_an_owned_pool() -> None:
    async with AsyncChamelaion(api_key="k") as client:
        assert not client.is_closed
    assert client.is_closed


async def test_async_with_options() -> None:
    script = Script(httpx.Response(200, json=request_json()))
    client = async_client(script, max_retries=3)
    copy = client.with_options(max_retries=1, timeout=4.0)
    assert isinstance(copy, AsyncChamelaion)
    assert (copy.max_retries, copy.timeout) == (1, 4.0)
    await copy.lipsync.requests.retrieve("x")
    assert script.requests[0].extensions["timeout"]["read"] == 4.0
