"""Provisioning finds kustomize where users have it: kustomize on PATH, else kubectl or oc
(their built-in ``kustomize``), before the sandbox's own build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stagecheck.engine.provision import find_kustomize, load_manifests
from stagecheck.errors import ManifestError
from stagecheck.sandbox.controlplane import built_kustomize


def tool(folder: Path, name: str, script: str = "exit 0") -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def test_kustomize_on_path_comes_first_then_kubectl_or_oc_then_the_sandbox_build(
    tmp_path: Path,
) -> None:
    first, second, built = tmp_path / "a", tmp_path / "b", tmp_path / "built"
    for folder in (first, second):
        folder.mkdir()
    search = f"{first}{os.pathsep}{second}"

    def sandbox_build() -> Path | None:  # built_kustomize: None where there is no build
        return built if built.is_file() else None

    assert find_kustomize(search, sandbox_build) is None
    tool(built.parent, "built")
    assert find_kustomize(search, sandbox_build) == [str(built), "build"]
    oc = tool(second, "oc")
    assert find_kustomize(search, sandbox_build) == [str(oc), "kustomize"]
    kubectl = tool(second, "kubectl")
    assert find_kustomize(search, sandbox_build) == [str(kubectl), "kustomize"]
    kustomize = tool(first, "kustomize")
    assert find_kustomize(search, sandbox_build) == [str(kustomize), "build"]


def test_a_kustomization_is_rendered_by_the_tool_found(tmp_path: Path) -> None:
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text("resources: []\n")
    rendered = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-kubectl}\n"
    kubectl = tool(tmp_path, "kubectl", f'[ "$1" = kustomize ] && cat <<EOF\n{rendered}EOF')
    (manifest,) = load_manifests(folder, [str(kubectl), "kustomize"])
    assert manifest.doc["metadata"]["name"] == "from-kubectl"
    assert manifest.source == f"{folder} (kubectl kustomize) document 1"
    with pytest.raises(ManifestError, match="no kustomize was found: put kustomize, kubectl"):
        load_manifests(folder, None)


def test_without_a_checkout_of_stagecheck_there_is_no_sandbox_build(tmp_path: Path) -> None:
    """A stage repository using the installed plugin has no scripts/build-control-plane: the
    sandbox's kustomize is then absent, not a crash of a script that is not there."""
    assert built_kustomize(tmp_path) is None
