"""Redaction by rule: what a value is decides whether it may be shown, not where it turns up.

Two kinds of rule:

- **Known secrets.** A value stagecheck read from a Secret (every Secret the client fetches),
  a kubeconfig or exec plugin (tokens, keys), a ``.env`` file, or an endpoint's credential is
  remembered for the run (``remember``), in its plain and base64 forms, and is cut out of every
  text that leaves the process: messages, tracebacks (pytest's ``--tb=long`` shows step
  arguments), captured output, evidence, JUnit, the status page, Allure's files.
- **Shapes of credentials**, whatever their origin: ``Authorization`` headers, bearer tokens,
  URL userinfo (``https://user:password@host``), JWTs, OpenShift ``sha256~`` tokens, AWS access
  key ids, PEM private keys, and ``password=...``-like pairs.

Objects shown whole (``redact_object``) lose in addition the values of fields that hold
configuration anyone may have put a secret in: Secret ``data``/``stringData`` (keys are kept),
ConfigMap ``data``/``binaryData``, every ``env`` value anywhere in an object (a Pod's, a
Deployment template's, a custom resource's such as a LlamaStackDistribution's), container
``args`` values, and the last-applied annotation. ``sensitive_path`` says the same of a field
path, so a diff of such a field says "differs" and never shows either value.

This module imports nothing of stagecheck: every layer may use it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import re
import threading
from typing import Any

REDACTED = "<redacted>"
# Shorter values are not cut out of free text: they would cut ordinary words ("true", "admin").
# The field rules still hide them in objects.
MIN_SECRET_LENGTH = 6

_SENSITIVE_WORD = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key)"
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
        ),
        REDACTED,
    ),
    (  # an Authorization header, as HTTP, JSON or a dict's repr writes it
        re.compile(
            r"(?i)\b((?:proxy-)?authorization['\"]?[ \t]*[:=][ \t]*['\"]?)"
            r"(?:(?:bearer|basic|token)[ \t]+)?(?!<redacted>)[^\s'\",}]+"
        ),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(r"(?i)\b(bearer|basic)[ \t]+(?!<redacted>)[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1 {REDACTED}",
    ),
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@'\"]+:[^/\s@'\"]+@"), rf"\1{REDACTED}@"),
    (re.compile(r"\beyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*"), REDACTED),
    (re.compile(r"\bsha256~[\w-]{20,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    (  # KEY=value (an environment, a command line, a query) where the name ends in a
        # credential's word; and "key": "value" as JSON writes it
        re.compile(
            rf"(?i)(\b[\w.-]*?{_SENSITIVE_WORD}=|\"[\w.-]*?{_SENSITIVE_WORD}\"[ \t]*:[ \t]*\")"
            r"(?!<redacted>)[^\s'\",;&}]+"
        ),
        rf"\1{REDACTED}",
    ),
)

_SENSITIVE_DATA_KINDS = ("Secret", "ConfigMap")
_DATA_FIELDS = ("data", "stringData", "binaryData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class _Known:
    """The run's secret values, longest first, as one expression (rebuilt when one is added)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        forms = {value, value.strip(), base64.b64encode(value.encode()).decode()}
        forms = {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
        with self._lock:
            if forms - self._values:
                self._values |= forms
                self._pattern = None

    def values(self) -> list[str]:
        with self._lock:
            return sorted(self._values)

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            return self._pattern


_known = _Known()


def remember(value: object) -> None:
    """A secret value met by this run: cut it out of everything shown from now on."""
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return
    if isinstance(value, str) and value:
        _known.add(value)
        for line in value.splitlines():  # a multi-line secret (a key file) also line by line
            if line.strip():
                _known.add(line)


def remember_secret_object(obj: Any) -> None:
    """Every value of a Secret (or each Secret of a list) the API returned: base64 ``data``
    decoded and as sent, ``stringData`` as is."""
    if not isinstance(obj, dict):
        return
    if obj.get("kind") == "SecretList" or (obj.get("kind", "").endswith("List") and "items" in obj):
        for item in obj.get("items") or []:
            if isinstance(item, dict) and (
                obj.get("kind") == "SecretList" or item.get("kind") == "Secret"
            ):
                _remember_secret_values(item)
        return
    if obj.get("kind") == "Secret":
        _remember_secret_values(obj)


def _remember_secret_values(secret: dict[str, Any]) -> None:
    for value in (secret.get("data") or {}).values():
        if isinstance(value, str):
            remember(value)
            with contextlib.suppress(ValueError):
                remember(base64.b64decode(value, validate=True))
    for value in (secret.get("stringData") or {}).values():
        remember(value)


def known_secrets() -> list[str]:
    """The remembered values (handed from a pytest-xdist worker to the controller, which
    writes the reports); never to be printed."""
    return _known.values()


def redact_text(text: str) -> str:
    """The text with every known secret and every credential-shaped run replaced."""
    if not text:
        return text
    pattern = _known.pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Any JSON-like value with ``redact_text`` applied to every string in it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object (or custom resource) safe to show whole."""
    clean = copy.deepcopy(obj)
    meta = clean.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = REDACTED
    if clean.get("kind") in _SENSITIVE_DATA_KINDS:
        for name in _DATA_FIELDS:
            if isinstance(clean.get(name), dict):
                clean[name] = {key: REDACTED for key in clean[name]}
    _redact_fields(clean)
    redacted: dict[str, Any] = redact_value(clean)
    return redacted


def redact_fields(value: Any) -> Any:
    """Part of an object (a list item, a sub-mapping) with the field rules of ``redact_object``
    applied: its env and args values, and the known secrets and credential shapes."""
    clean = copy.deepcopy(value)
    _redact_fields(clean)
    return redact_value(clean)


def _redact_fields(node: Any) -> None:
    """Every ``env`` value and every ``args`` value, wherever in the object they are."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
            continue
        if not isinstance(current, dict):
            continue
        for key, value in current.items():
            if key == "env" and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict) and "value" in entry:
                        entry["value"] = REDACTED
            elif key == "args" and isinstance(value, list):
                current[key] = [_redact_arg(a) for a in value]
            else:
                stack.append(value)


def _redact_arg(arg: Any) -> Any:
    """``--flag`` stays (it says how the container runs); a value, or ``--flag=value``'s
    value, goes."""
    if not isinstance(arg, str):
        return REDACTED
    if re.fullmatch(r"--?[A-Za-z][\w.-]*", arg):
        return arg
    flag = re.match(r"(--?[A-Za-z][\w.-]*=)", arg)
    return f"{flag.group(1)}{REDACTED}" if flag else REDACTED


def sensitive_path(kind: str | None, path: str) -> bool:
    """Whether a field path (``data.password``, ``spec.template.spec.containers[0].env[1]``)
    holds a value ``redact_object`` would hide."""
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    if kind in _SENSITIVE_DATA_KINDS and top in _DATA_FIELDS:
        return True
    parts = re.split(r"[.\[\]]+", path)
    return "env" in parts or "args" in parts or LAST_APPLIED in path
