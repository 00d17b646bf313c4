"""The Allure HTML report: ``scripts/report`` renders a run's Allure results with Allure 3.

    scripts/report [--results DIR] [--output DIR] [--history FILE]

Defaults: ``<reports>/allure-results`` to ``<reports>/allure-report/index.html``, history in
``<reports>/allure-history.jsonl``. The renderer is the npm package ``allure`` (no Java),
installed once from the npm registry under ``<cache>/node/allure-<version>`` and reused. The
report is a single HTML file that opens from disk; each rendered run is added to the history,
so trends show from the second run on (rendering the same run again adds nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagecheck.config import load_settings
from stagecheck.errors import StagecheckError
from stagecheck.reporting.environment import read_properties

ALLURE_VERSION = "3.18.0"
HISTORY_LIMIT = 50
# The renderer's page embeds Google Analytics; a stage report has no business calling out.
_ANALYTICS = re.compile(
    r"\s*<script async src=\"https://www\.googletagmanager\.com/[^\"]*\"></script>"
    r"\s*<script>\s*window\.dataLayer[\s\S]*?</script>"
)


@dataclass(frozen=True)
class Rendered:
    index: Path
    seconds: float
    installed: bool  # whether this call had to install the renderer first
    results: int
    history: Path


def renderer(cache_dir: Path) -> tuple[Path, bool]:
    """The Allure CLI script, installed from the npm registry on first use."""
    home = cache_dir / "node" / f"allure-{ALLURE_VERSION}"
    cli = home / "node_modules" / "allure" / "cli.js"
    if cli.exists():
        return cli, False
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise StagecheckError(f"the HTML report needs Node.js: {tool} is not on PATH")
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{home.name}.", dir=home.parent))
    try:
        installed = subprocess.run(
            ["npm", "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
            + ["--save-exact", "--loglevel=error", f"allure@{ALLURE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if installed.returncode != 0:
            raise StagecheckError(
                f"npm could not install allure@{ALLURE_VERSION}:\n"
                + (installed.stdout + installed.stderr)[-2000:]
            )
        if not home.exists():
            staging.rename(home)  # whole or not at all: a half install is never found
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cli, True


def render(
    results: Path, output: Path, history: Path, cache_dir: Path, name: str | None = None
) -> Rendered:
    if not any(results.glob("*-result.json")):
        raise StagecheckError(f"no Allure results in {results}: run the stage first")
    started = time.monotonic()
    cli, installed = renderer(cache_dir)
    render_started = time.monotonic()
    environment = read_properties(results / "environment.properties")
    title = name or _report_name(results, environment)
    history.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "name": title,
        "output": str(output.resolve()),
        "historyPath": str(history.resolve()),
        "historyLimit": HISTORY_LIMIT,
        # The same run rendered again is not a new point of the trend.
        "appendHistory": _last_history_name(history) != title,
        "plugins": {
            "awesome": {"options": {"singleFile": True, "groupBy": ["parentSuite", "suite"]}}
        },
        "categories": _categories(results),
    }
    with tempfile.TemporaryDirectory(prefix="stagecheck-allure-") as scratch:
        rc = Path(scratch) / "allurerc.json"
        rc.write_text(json.dumps(config), encoding="utf-8")
        generated = subprocess.run(
            ["node", str(cli), "generate", "--config", str(rc), str(results.resolve())],
            cwd=scratch,
            env={**os.environ, "ALLURE_NO_ANALYTICS": "true"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    index = output / "index.html"
    if generated.returncode != 0 or not index.exists():
        raise StagecheckError(
            "allure generate failed:\n" + (generated.stdout + generated.stderr)[-2000:]
        )
    index.write_text(_ANALYTICS.sub("", index.read_text(encoding="utf-8")), encoding="utf-8")
    return Rendered(
        index=index,
        seconds=time.monotonic() - (started if installed else render_started),
        installed=installed,
        results=len(list(results.glob("*-result.json"))),
        history=history,
    )


def _report_name(results: Path, environment: dict[str, str]) -> str:
    stages = sorted(
        {
            label["value"]
            for path in results.glob("*-result.json")
            for label in json.loads(path.read_text(encoding="utf-8")).get("labels", [])
            if label.get("name") == "epic"
        }
    )
    parts = ["stagecheck " + ", ".join(stages) if stages else "stagecheck"]
    if environment.get("target"):
        parts.append(f"on {environment['target']}")
    if environment.get("run.id"):
        parts.append(environment["run.id"])
    return " · ".join(parts)


def _categories(results: Path) -> list[Any]:
    """Allure 3 takes categories from its configuration, not from the results folder."""
    path = results / "categories.json"
    if not path.exists():
        return []
    found = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _last_history_name(history: Path) -> str | None:
    if not history.exists():
        return None
    lines = [line for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        return str(json.loads(lines[-1]).get("name")) if lines else None
    except ValueError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/report", description="Render a run's Allure results as an HTML report."
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help="default: <reports>/allure-results")
    parser.add_argument("--output", type=Path, help="default: <reports>/allure-report")
    parser.add_argument("--history", type=Path, help="default: <reports>/allure-history.jsonl")
    parser.add_argument("--name", help="the report's title (default: stages, target and run)")
    options = parser.parse_args(argv)
    try:
        settings = load_settings(root=options.root)
        reports = settings.reports_dir
        rendered = render(
            results=options.results or reports / "allure-results",
            output=options.output or reports / "allure-report",
            history=options.history or reports / "allure-history.jsonl",
            cache_dir=settings.cache_dir,
            name=options.name,
        )
    except StagecheckError as error:
        print(f"report: {error}", file=sys.stderr)
        return 1
    how = "installed the renderer and rendered" if rendered.installed else "rendered"
    print(
        f"[report] {how} {rendered.results} results in {rendered.seconds:.1f}s; "
        f"history: {rendered.history}"
    )
    print(f"[report] Allure report: {rendered.index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
