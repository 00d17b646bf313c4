"""Docling (docling-serve), the stage's document converter: its health, its version, and a
small document converted to Markdown where the target allows conversions.

A target may add conversion options with its ``docling_convert_options`` variable (JSON), or
forbid conversions with ``docling_convert = "no"`` (a shared server under load); the
conversion scenario is then skipped with that reason, never passed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from stagecheck.engine.endpoints import Endpoint, with_backend_evidence
from stagecheck.engine.outcome import fail
from stagecheck.errors import CannotRunHere, ConfigError

CONVERT = "/v1/convert/source"


@with_backend_evidence
def healthy(endpoint: Endpoint) -> str:
    """``/health`` says ok; returns the docling-serve version from ``/version`` ("" if none)."""
    subject = f"Docling at {endpoint.url}"
    try:
        with endpoint.client() as http:
            health = http.get("/health")
            version = http.get("/version")
    except httpx.HTTPError as error:
        actual = f"{endpoint.describe()} does not answer: {error}"
        raise fail(subject, "/health to answer", actual) from None
    if health.status_code != 200 or _json(health).get("status") != "ok":
        raise fail(
            subject,
            '/health to answer {"status": "ok"}',
            f"HTTP {health.status_code}: {health.text[:200]}",
        )
    return str(_json(version).get("docling-serve", "")) if version.status_code == 200 else ""


@with_backend_evidence
def converts(endpoint: Endpoint, variables: Mapping[str, str], document: Path, text: str) -> str:
    """The document, sent inline, comes back as Markdown containing ``text``; returns it."""
    if variables.get("docling_convert", "yes").lower() in ("no", "false"):
        raise CannotRunHere(
            f"Docling conversions are not allowed on this target (var docling_convert = "
            f"{variables['docling_convert']!r}); the health check still runs"
        )
    subject = f"Docling at {endpoint.url}"
    expected = f"{document.name} converted to Markdown containing {text!r}"
    options: dict[str, Any] = {"to_formats": ["md"], **_extra_options(variables)}
    body = {
        "sources": [
            {
                "kind": "file",
                "filename": document.name,
                "base64_string": base64.b64encode(document.read_bytes()).decode(),
            }
        ],
        "options": options,
    }
    try:
        with endpoint.client() as http:
            response = http.post(CONVERT, json=body)
    except httpx.HTTPError as error:
        raise fail(subject, expected, f"{endpoint.describe()} does not answer: {error}") from None
    found = _json(response)
    if response.status_code != 200:
        detail = found.get("detail") or response.text[:300]
        raise fail(
            subject,
            expected,
            f"HTTP {response.status_code} from {CONVERT}: {detail}",
            "the conversion task failed inside the server; its log says why (a model it "
            "could not load, for instance)"
            if response.status_code == 404
            else None,
        )
    status = found.get("status")
    markdown = str((found.get("document") or {}).get("md_content") or "")
    if status not in ("success", "partial_success"):
        errors = "; ".join(str(e.get("error_message", e)) for e in found.get("errors") or [])
        raise fail(subject, expected, f"status {status}" + (f": {errors}" if errors else ""))
    if text not in markdown:
        raise fail(subject, expected, f"Markdown without it: {markdown[:300]!r}")
    return markdown


def _extra_options(variables: Mapping[str, str]) -> dict[str, Any]:
    raw = variables.get("docling_convert_options")
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"var docling_convert_options is not JSON: {error}") from None
    if not isinstance(options, dict):
        raise ConfigError("var docling_convert_options must be a JSON object")
    return options


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
