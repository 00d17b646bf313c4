"""The artifact store: SeaweedFS (``weed server`` with its S3 gateway), one identity whose keys
only the sandbox knows. The same version as a process and as a container."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import answers_http

NAME = "s3"
IMAGE = "chrislusf/seaweedfs:4.48"  # the version the process data plane runs
CONTAINER_PORT = 8333
CONTAINER_CONFIG = "/etc/seaweedfs/stagecheck-identities.json"
ACCESS_KEY = "sandbox-dspa"  # the secret key is made anew at every start


def identities(keys: Mapping[str, str]) -> dict[str, Any]:
    identity = {
        "name": "dspa",
        "credentials": [{"accessKey": keys["access_key"], "secretKey": keys["secret_key"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return {"identities": [identity]}


def process(ctx: ProcessContext) -> ProcessSpec:
    """Every file of it under <state>/s3: data, identities (mode 0600), logs and the local
    sockets of its S3 and filer servers (by default in /tmp). Its gRPC servers' local sockets
    are named by weed itself, /tmp/seaweedfs-<server>-grpc-<port>.sock, whatever TMPDIR says
    and with no option to move them (seen with weed 4.48): stopping the group removes them."""
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = ctx.ports[NAME]
    home = ctx.fresh_dir(NAME)
    data, logs, sockets = home / "data", home / "logs", home / "sockets"
    for folder in (data, logs, sockets):
        folder.mkdir()
    config = home / "identities.json"
    config.touch(mode=0o600)
    config.write_text(json.dumps(identities(ctx.s3_keys)))
    return ProcessSpec(
        [ctx.envs[NAME].bin("weed"), f"-logdir={logs}", "server"]
        + ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}"]
        + [f"-master.port={master}", f"-master.port.grpc={master_grpc}"]
        + [f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}"]
        + [f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}"]
        + [f"-filer.localSocket={sockets / f'filer-{filer}.sock'}"]
        + ["-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}"]
        + [f"-s3.localSocket={sockets / f's3-{s3}.sock'}"]
        + ["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
        + ["-volume.max=4"]
    )


def leftovers(ports: list[int]) -> list[str]:
    """The sockets weed puts in /tmp whatever it is told, for the ports it was given."""
    s3, s3_grpc, _, master_grpc, _, volume_grpc, _, filer_grpc = ports
    return [
        f"/tmp/seaweedfs-master-grpc-{master_grpc}.sock",
        f"/tmp/seaweedfs-volume-grpc-{volume_grpc}.sock",
        f"/tmp/seaweedfs-filer-grpc-{filer_grpc}.sock",
        f"/tmp/seaweedfs-s3-grpc-{s3_grpc}.sock",
    ]


def container(ctx: ContainerContext) -> ContainerSpec:
    return ContainerSpec(
        NAME,
        IMAGE,
        ("server", "-ip.bind=0.0.0.0", "-dir=/data", "-volume.max=4", "-master.telemetry=false")
        + ("-s3", f"-s3.port={CONTAINER_PORT}", f"-s3.config={CONTAINER_CONFIG}")
        + ("-s3.port.iceberg=0", "-s3.port.lance=0"),
        CONTAINER_PORT,
        files={CONTAINER_CONFIG: json.dumps(identities(ctx.s3_keys)).encode()},
    )


SERVICE = Service(
    NAME,
    probe=answers_http,
    ready_timeout_s=60.0,
    process=process,
    ports=8,
    container=container,
    container_ready_timeout_s=120.0,
)
