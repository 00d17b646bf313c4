"""A Llama Stack pod that cannot write its stores: the cause is claimed only with both pieces of
evidence, the container's log showing a write failure at a path and a read-only mount of the
container covering that path (named by the LlamaStackDistribution field that asks for it)."""

from __future__ import annotations

import copy
from typing import Any, cast

from stagecheck.engine.checks import read_only_mounts
from stagecheck.engine.llama_stack_stores import store_not_writable, stores_cause, write_failures
from stagecheck.errors import StagecheckError
from stagecheck.kube.client import JsonObject, Kube

STORE = "/opt/app-root/src/.llama/distributions/rh"
# What llama-stack 0.7.3 logs when its store folder is read-only (its configuration, padded by
# its log formatter, then SQLite's error, which names no path)
SQLITE_LOG = f"""\
INFO     2026-12-08T01:18:35.694907Z  llama_stack.core.server.server:374 Stack Configuration:
         storage:
           backends:
             kv_default:
               db_path: {STORE}/kvstore.db{" " * 40}
               type: kv_sqlite
             sql_default:
               db_path: {STORE}/sql_store.db
Traceback (most recent call last):
  File ".../llama_stack/core/storage/kvstore/sqlite/sqlite.py", line 58, in initialize
sqlite3.OperationalError: unable to open database file
"""
OSERROR_LOG = f"OSError: [Errno 30] Read-only file system: '{STORE}/files'\n"
HEALTHY_LOG = (
    SQLITE_LOG.rsplit("Traceback", 1)[0] + "INFO     Uvicorn running on http://0.0.0.0:8321\n"
)


def distribution(mount_path: str = STORE) -> JsonObject:
    return {
        "kind": "LlamaStackDistribution",
        "metadata": {"name": "llama-stack", "namespace": "ns"},
        "spec": {
            "server": {
                "podOverrides": {
                    "volumes": [{"name": "config", "configMap": {"name": "llamastack-config"}}],
                    "volumeMounts": [{"name": "config", "mountPath": mount_path}],
                }
            }
        },
    }


def pod(mounts: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> JsonObject:
    """The operator's pod: its storage volume first, then the overrides'."""
    return {
        "metadata": {"name": "llama-stack-1", "namespace": "ns"},
        "spec": {
            "containers": [
                {
                    "name": "llamastack",
                    "volumeMounts": [{"name": "lls-storage", "mountPath": "/.llama"}, *mounts],
                },
                {"name": "istio-proxy"},
            ],
            "volumes": [{"name": "lls-storage", "emptyDir": {}}, *volumes],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "llamastack", "restartCount": 2}],
        },
    }


CONFIG_VOLUME = {"name": "config", "configMap": {"name": "llamastack-config"}}
CONFIG_POD = pod([{"name": "config", "mountPath": STORE}], [CONFIG_VOLUME])
CAUSE = (
    f'the server cannot write {STORE}/kvstore.db: that path is under the volume "config" '
    "(ConfigMap llamastack-config) that LlamaStackDistribution llama-stack "
    f"spec.server.podOverrides.volumeMounts[0] mounts read-only at {STORE} "
    "(its log: 'sqlite3.OperationalError: unable to open database file')"
)


def test_sqlite_failing_under_a_configmap_mount_names_the_distributions_field() -> None:
    assert store_not_writable(distribution(), CONFIG_POD, "llamastack", SQLITE_LOG) == CAUSE


def test_a_path_the_error_names_is_taken_from_the_error() -> None:
    cause = store_not_writable(distribution(), CONFIG_POD, "llamastack", OSERROR_LOG)
    assert cause is not None
    assert cause.startswith(f"the server cannot write {STORE}/files: ")
    assert "Read-only file system" in cause
    assert [f.path for f in write_failures(SQLITE_LOG + OSERROR_LOG)] == [f"{STORE}/files"]


def test_no_write_failure_in_the_log_claims_no_cause() -> None:
    assert write_failures(HEALTHY_LOG) == []
    assert store_not_writable(distribution(), CONFIG_POD, "llamastack", HEALTHY_LOG) is None


def test_a_failure_no_read_only_mount_covers_claims_no_cause() -> None:
    # The same log, the ConfigMap mounted elsewhere: the store folder is writable.
    elsewhere = pod([{"name": "config", "mountPath": "/opt/app-root/run.yaml"}], [CONFIG_VOLUME])
    assert store_not_writable(distribution(), elsewhere, "llamastack", SQLITE_LOG) is None
    # An emptyDir at the store folder is writable: no cause either.
    writable = pod([{"name": "data", "mountPath": STORE}], [{"name": "data", "emptyDir": {}}])
    assert store_not_writable(None, writable, "llamastack", SQLITE_LOG) is None
    # A path that merely starts like the mount's is not under it.
    sibling = pod([{"name": "config", "mountPath": STORE + "-config"}], [CONFIG_VOLUME])
    assert store_not_writable(distribution(), sibling, "llamastack", SQLITE_LOG) is None


def test_a_read_only_mount_the_resource_does_not_ask_for_is_named_on_the_pod() -> None:
    claim = {"name": "data", "persistentVolumeClaim": {"claimName": "stores"}}
    mounted = pod([{"name": "data", "mountPath": STORE, "readOnly": True}], [claim])
    cause = store_not_writable(distribution(), mounted, "llamastack", SQLITE_LOG)
    assert cause is not None
    assert (
        '"data" (PersistentVolumeClaim stores) that pod llama-stack-1 container llamastack '
        f"volumeMounts[1] mounts read-only at {STORE}"
    ) in cause


def test_kubernetes_mounts_configmaps_secrets_and_projected_volumes_read_only() -> None:
    volumes = [
        CONFIG_VOLUME,
        {"name": "token", "projected": {"sources": []}},
        {"name": "key", "secret": {"secretName": "tls"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    mounts = [{"name": v["name"], "mountPath": f"/m/{v['name']}"} for v in volumes]
    found = read_only_mounts(pod(mounts, volumes), "llamastack")
    assert [(m.volume, m.source) for m in found] == [
        ("config", "ConfigMap llamastack-config"),
        ("token", "projected"),
        ("key", "Secret tls"),
    ]
    assert read_only_mounts(pod(mounts, volumes), "no-such-container") == []


class Logs:
    """The API server's ``pods/<pod>/log`` for one container: the current and the previous
    container's logs (a missing one is the API's error)."""

    def __init__(self, current: str | None, previous: str | None = None) -> None:
        self.logs = {"": current, "true": previous}
        self.asked: list[dict[str, str]] = []

    def get_text(self, path: str, params: dict[str, str]) -> str:
        self.asked.append(params)
        found = self.logs[params.get("previous", "")]
        if found is None:
            raise StagecheckError(f"no log at {path}")
        return found


def test_the_log_is_read_through_the_api_the_previous_container_after_a_restart() -> None:
    logs = Logs("INFO     starting again\n", previous=SQLITE_LOG)
    assert stores_cause(cast(Kube, logs), distribution(), [CONFIG_POD]) == CAUSE
    assert [a["container"] for a in logs.asked] == ["llamastack", "llamastack"]
    assert logs.asked[1]["previous"] == "true"


def test_a_ready_pod_or_an_unreadable_log_claims_no_cause() -> None:
    ready = copy.deepcopy(CONFIG_POD)
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert stores_cause(cast(Kube, Logs(SQLITE_LOG)), distribution(), [ready]) is None
    assert stores_cause(cast(Kube, Logs(None)), distribution(), [CONFIG_POD]) is None
