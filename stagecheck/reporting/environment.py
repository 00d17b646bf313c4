"""The environment a run saw, as Allure's ``environment.properties`` and the status page show it.

Only names and versions: the target's name, type and context, the namespace, the run id, the
versions seen and the images the stage namespace's pods ran as the run began. Never the
kubeconfig's path or content, a server credential or a variable.
"""

from __future__ import annotations

import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from stagecheck.config import Settings
from stagecheck.reporting.versions import SeenVersions

_ENTRY = re.compile(r"^((?:\\.|[^\\=])*)=(.*)$")  # key up to the first unescaped =
_ESCAPED = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
TOOLS = ("stagecheck", "pytest", "pytest-bdd", "allure-pytest-bdd")


def environment_entries(settings: Settings, seen: SeenVersions) -> dict[str, str]:
    target = settings.target
    entries = {
        "target": target.name,
        "target.type": target.type,
        "target.context": target.context or "",
        "namespace": target.namespace,
        "run.id": settings.run.id,
    }
    for what, found in seen.as_dict().items():  # image-<workload>-<container>: image.<...>
        key = f"image.{what[6:]}" if what.startswith("image-") else f"{what}.version"
        entries[key] = found
    entries["python.version"] = platform.python_version()
    for tool in TOOLS:
        entries[f"{tool}.version"] = _installed(tool)
    return {key: value for key, value in entries.items() if value}


def _installed(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


def write_properties(path: Path, entries: dict[str, str]) -> None:
    lines = [f"{_escape(key, True)}={_escape(value, False)}" for key, value in entries.items()]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def _escape(text: str, key: bool) -> str:
    """Java properties escaping, ASCII only (non-ASCII as \\uXXXX)."""
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char in "=:#!" and (key or index == 0):
            out.append("\\" + char)
        elif char == " " and (key or index == 0):
            out.append("\\ ")
        elif ord(char) > 126 or ord(char) < 32:
            units = char.encode("utf-16-be")
            out.extend(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
        else:
            out.append(char)
    return "".join(out)


def read_properties(path: Path) -> dict[str, str]:
    """The entries of a properties file written by ``write_properties``."""
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "!")):
            continue
        key, _, value = re.split(r"(?<!\\)(=)", line, maxsplit=1) + ["", ""][:0]
        entries[_unescape(key)] = _unescape(value)
    return entries


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return "\n" if code == "n" else code

    joined = _ESCAPED.sub(one, text)  # \ud83d\ude42: two halves of one character
    return joined.encode("utf-16", "surrogatepass").decode("utf-16")
