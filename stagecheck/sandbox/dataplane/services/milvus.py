"""Milvus: milvus-lite's server (gRPC) as a process; Milvus standalone as a container."""

from __future__ import annotations

from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import milvus_answers

NAME = "milvus"
IMAGE = "milvusdb/milvus:v2.6.11"
CONTAINER_PORT = 19530


def process(ctx: ProcessContext) -> ProcessSpec:
    """milvus-lite's server on its data folder. ``milvus-down``: the folder it is given lies
    under a regular file, so the server cannot make it and exits as it starts (as Milvus
    standalone exits when it cannot open its storage)."""
    home = ctx.fresh_dir(NAME)
    data = home / "data"
    if "milvus-down" in ctx.faults:
        (home / "storage-is-a-file").write_text("not a folder\n")
        data = home / "storage-is-a-file" / "data"
    else:
        data.mkdir()
    return ProcessSpec(
        [ctx.envs[NAME].bin("milvus-lite"), "server", "--data-dir", str(data)]
        + ["--host", "127.0.0.1", "--port", str(ctx.ports[NAME][0])]
    )


def container(ctx: ContainerContext) -> ContainerSpec:
    """Embedded etcd, local storage: the settings of testcontainers' MilvusContainer."""
    return ContainerSpec(
        NAME,
        IMAGE,
        ("milvus", "run", "standalone"),
        CONTAINER_PORT,
        env={
            "ETCD_USE_EMBED": "true",
            "ETCD_DATA_DIR": "/var/lib/milvus/etcd",
            "COMMON_STORAGETYPE": "local",
        },
    )


SERVICE = Service(
    NAME,
    probe=milvus_answers,
    ready_timeout_s=60.0,
    process=process,
    container=container,
    container_ready_timeout_s=180.0,
)
