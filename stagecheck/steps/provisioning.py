"""Provisioning steps: apply a folder of manifests or a kustomization, create a secret from
variables, label a namespace. What a scenario changes is undone when it ends (``--cleanup``);
on a kind or cluster target they refuse to write unless the run has ``--allow-writes``.

    the manifests in "<path>" are applied [and ready within <duration>]
    the secret "<name>" holds "<VAR>, <VAR>" from the environment
    the secret "<name>" holds "<VAR>, <VAR>" from "<.env file>"
    the stage namespace is labelled "<key>" with value "<value>"
    the namespace "<name>" is labelled "<key>" with value "<value>"
    the S3 bucket "<bucket>" exists, with the credentials in secret "<secret>"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stagecheck.config import Settings, Target
from stagecheck.steps.kubernetes import WITHIN, action

if TYPE_CHECKING:
    from stagecheck.engine.endpoints import Endpoints
    from stagecheck.engine.provision import Provisioner


@action(r'the manifests in "(?P<path>[^"]+)" are applied(?: and ready' + WITHIN + ")?")
def manifests_applied(
    provisioner: Provisioner, repository: Path, path: str, within: float | None
) -> None:
    provisioner.apply(repository / path, within)


@action(r'the secret "(?P<name>[^"]+)" holds "(?P<keys>[^"]+)" from the environment')
def secret_from_environment(
    provisioner: Provisioner, settings: Settings, name: str, keys: list[str]
) -> None:
    provisioner.create_secret(name, keys, settings.environ, "the environment")


@action(r'the secret "(?P<name>[^"]+)" holds "(?P<keys>[^"]+)" from "(?P<file>[^"]+)"')
def secret_from_file(
    provisioner: Provisioner, repository: Path, name: str, keys: list[str], file: str
) -> None:
    from stagecheck.engine.provision import read_env_file  # see stagecheck/steps/__init__.py

    provisioner.create_secret(name, keys, read_env_file(repository / file), file)


@action(r'the stage namespace is labelled "(?P<key>[^"]+)" with value "(?P<value>[^"]*)"')
def stage_namespace_labelled(
    provisioner: Provisioner, target: Target, key: str, value: str
) -> None:
    provisioner.label_namespace(target.namespace, key, value)


@action(
    r'the namespace "(?P<name>[^"]+)" is labelled "(?P<key>[^"]+)" with value "(?P<value>[^"]*)"'
)
def namespace_labelled(provisioner: Provisioner, name: str, key: str, value: str) -> None:
    provisioner.label_namespace(name, key, value)


@action(
    r'the S3 bucket "(?P<bucket>[^"]+)" exists, with the credentials in secret "(?P<secret>[^"]+)"'
)
def bucket_exists(provisioner: Provisioner, endpoints: Endpoints, bucket: str, secret: str) -> None:
    provisioner.ensure_bucket(endpoints.resolve("s3"), bucket, secret)
