"""The OpenAPI document and the API index: every HTTP route described (both ways), a valid OpenAPI 3.1
document, auth and errors declared on every operation, and both served by the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Mount, Route, WebSocketRoute

from server.openapi import document, index
from tests.conftest import make_settings
from tests.helpers import Running, serve

TIMEOUT = 10.0
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One server for the module."""
    async with serve(make_settings(tmp_path_factory.mktemp("openapi"))) as running:
        yield running


@pytest.fixture
async def http(shared: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def app_routes(shared: Running) -> dict[str, set[str]]:
    """The app's HTTP routes: path -> methods (lower case; HEAD, which GET implies, left out)."""
    routes: dict[str, set[str]] = {}
    for route in shared.app.routes:
        if isinstance(route, Mount | WebSocketRoute):
            continue
        assert isinstance(route, Route), route
        routes.setdefault(route.path, set()).update(m.lower() for m in route.methods or ())
        routes[route.path].discard("head")
    return routes


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def resolve(ref: dict[str, Any]) -> dict[str, Any]:
    """The object a local ``$ref`` points to (or the object itself when it is not a reference)."""
    if "$ref" not in ref:
        return ref
    found: Any = document()
    for part in ref["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    assert isinstance(found, dict)
    return found


def schema_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of the document, its references resolved within the document."""
    return Draft202012Validator({**schema, "components": document()["components"]})


def test_every_route_is_documented_with_its_methods(app_routes: dict[str, set[str]]) -> None:
    """Each HTTP route of the app is a path of the document, with exactly the route's methods."""
    paths = document()["paths"]
    for path, methods in app_routes.items():
        assert path in paths, f"{path} missing from the OpenAPI document"
        assert set(paths[path]) & HTTP_METHODS == methods, path


def test_every_documented_path_is_a_route(app_routes: dict[str, set[str]]) -> None:
    """The document describes no path the app does not answer."""
    stale = set(document()["paths"]) - set(app_routes)
    assert not stale, f"documented but not routed: {sorted(stale)}"


def test_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)


def test_websocket_is_pointed_to() -> None:
    """The WebSocket endpoint, not an HTTP operation, is named in the description with its contract."""
    description = document()["info"]["description"]
    assert "/ws/{role}/{room_id}" in description and "docs/protocol.md" in description


def test_every_operation_declares_its_security() -> None:
    """Each operation says how it is authorised (an empty list: no credentials), with known schemes."""
    schemes = set(document()["components"]["securitySchemes"])
    for method, path, operation in operations():
        assert "security" in operation, f"{method.upper()} {path} declares no security"
        for requirement in operation["security"]:
            assert set(requirement) <= schemes, f"{method.upper()} {path}: unknown scheme in {requirement}"


def test_every_4xx_answer_is_a_shared_error_response() -> None:
    """Each 4xx answer references a shared response; those of the JSON API carry the error schema."""
    for method, path, operation in operations():
        for status, answer in operation["responses"].items():
            if not status.startswith("4"):
                continue
            assert answer.get("$ref", "").startswith("#/components/responses/"), f"{method} {path} {status}"
            media = resolve(answer)["content"]
            if path.startswith("/api/") or "application/json" in media:
                assert media["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


async def test_a_real_error_matches_the_error_schema(http: httpx.AsyncClient) -> None:
    """An error the app answers validates against the document's error schema."""
    response = await http.get("/api/rooms/no-such-room")
    assert response.status_code == 404
    schema_validator(document()["components"]["schemas"]["Error"]).validate(response.json())


async def test_api_index_answers_json(http: httpx.AsyncClient) -> None:
    """GET /api lists the service, the OpenAPI link and every operation of the document."""
    response = await http.get("/api")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == index()
    assert body["openapi"] == "/api/openapi.json" and body["version"] == document()["info"]["version"]
    listed = {(e["method"].lower(), e["path"]) for e in body["endpoints"]}
    assert listed == {(method, path) for method, path, _ in operations()}


async def test_api_index_is_a_page_for_browsers(http: httpx.AsyncClient) -> None:
    """A browser (Accept prefers text/html) gets the index as a page linking to the document."""
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await http.get("/api", headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/api/openapi.json"' in response.text and "/api/rooms/{room_id}/join" in response.text


async def test_openapi_json_is_served(http: httpx.AsyncClient) -> None:
    """GET /api/openapi.json answers the document."""
    response = await http.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == document()


async def test_parameterless_gets_answer_as_documented(http: httpx.AsyncClient) -> None:
    """Each GET without parameters answers a documented status and media type (and schema, for JSON)."""
    called = []
    for method, path, operation in operations():
        if method != "get" or "{" in path:
            continue
        response = await http.get(path)
        answers = operation["responses"]
        assert str(response.status_code) in answers, f"GET {path}: {response.status_code} undocumented"
        content = resolve(answers[str(response.status_code)]).get("content", {})
        media = response.headers.get("content-type", "").split(";")[0]
        assert media in content, f"GET {path}: {media} not among {sorted(content)}"
        if media == "application/json":
            schema_validator(content[media]["schema"]).validate(response.json())
        called.append(path)
    assert {"/healthz", "/readyz", "/metrics", "/api", "/api/openapi.json", "/api/push/key"} <= set(called)
