"""Checks on objects shaped as the API returns them (no cluster needed for pure logic)."""

from stagecheck.engine import checks


def pod(name: str, ready: bool, waiting: str | None = None, phase: str = "Running") -> dict:
    status: dict = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": str(ready), "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ],
    }
    if waiting:
        status["containerStatuses"] = [{"name": "app", "state": {"waiting": {"reason": waiting}}}]
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app"}]}, "status": status}


def deployment(
    ready: int, replicas: int, available: str, progressing_reason: str = "NewReplicaSetAvailable"
) -> dict:
    return {
        "metadata": {"name": "web", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": ready,
            "conditions": [
                {"type": "Available", "status": available, "reason": "MinimumReplicasUnavailable"},
                {"type": "Progressing", "status": "False", "reason": progressing_reason},
            ],
        },
    }


def test_crashloop_is_terminal_and_named() -> None:
    observation = checks.pods_ready(
        [pod("a", True), pod("b", False, "CrashLoopBackOff")], "app=x", "ns"
    )
    assert not observation.ok
    assert observation.terminal == "CrashLoopBackOff"
    assert observation.actual == "1/2 pods Ready"


def test_a_pod_still_starting_is_not_terminal() -> None:
    observation = checks.pods_ready([pod("a", False, "ContainerCreating")], "app=x", "ns")
    assert observation.terminal is None
    assert "ContainerCreating" in (observation.cause or "")


def test_failed_pod_phase_is_terminal() -> None:
    observation = checks.pods_ready([pod("a", False, phase="Failed")], "app=x", "ns")
    assert observation.terminal == "Failed"


def test_progress_deadline_exceeded_stops_a_deployment_wait() -> None:
    observation = checks.deployment_available(
        deployment(0, 1, "False", "ProgressDeadlineExceeded"), [], None, None
    )
    assert observation.terminal == "Progressing reason ProgressDeadlineExceeded"


def test_deployment_counts_must_match_exactly_when_given() -> None:
    assert checks.deployment_available(deployment(2, 2, "True"), [], 2, 2).ok
    assert not checks.deployment_available(deployment(2, 2, "True"), [], 1, 2).ok


def test_a_stale_deployment_status_is_not_trusted() -> None:
    stale = deployment(1, 1, "True")
    stale["metadata"]["generation"] = 2
    assert not checks.deployment_available(stale, [], None, None).ok


def test_native_sidecars_count_as_containers() -> None:
    meshed = pod("a", True)
    meshed["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    assert checks.pods_have_container([meshed], "app=x", "ns", "istio-proxy").ok
    meshed["spec"]["initContainers"] = [{"name": "istio-proxy"}]  # a plain init container
    assert not checks.pods_have_container([meshed], "app=x", "ns", "istio-proxy").ok


def test_a_pod_is_judged_again_only_when_its_version_changes() -> None:
    """A wait re-checks every pod on every change; unchanged pods keep their verdict."""
    from stagecheck.engine.checks import pod_is_ready

    pod = {
        "metadata": {"name": "p", "uid": "u-1", "resourceVersion": "7"},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert not pod_is_ready(pod)
    pod["status"]["conditions"][0]["status"] = "True"  # the same version: not looked at again
    assert not pod_is_ready(pod)
    pod["metadata"]["resourceVersion"] = "8"  # as the API server writes a change
    assert pod_is_ready(pod)


def _dspa(store_message: str) -> dict[str, object]:
    """A DSPA as DSPO v2.17 writes it when its own StatObject fails (controllers/storage.go)."""
    return {
        "status": {
            "conditions": [
                {"type": "ObjectStoreAvailable", "status": "False", "reason": "FailingToDeploy",
                 "message": store_message},
                {"type": "Ready", "status": "False", "reason": "MinimumReplicasAvailable",
                 "message": store_message},
            ]
        }
    }  # fmt: skip


def test_a_refused_object_store_key_ends_a_readiness_wait_at_once() -> None:
    refused = checks.condition_is(
        _dspa(
            "Could not connect to (minio.minio.svc.cluster.local:9000), Error: The request "
            "signature we calculated does not match the signature you provided."
        ),
        "Ready",
        "True",
    )
    assert refused.terminal == "condition ObjectStoreAvailable: the credentials were refused"
    assert refused.cause is not None and "ObjectStoreAvailable" in refused.cause


def test_an_object_store_not_answering_yet_is_waited_for() -> None:
    """DSPO uses FailingToDeploy for transient connection errors too: no early end."""
    waiting = checks.condition_is(
        _dspa("Could not connect to (minio:9000), Error: dial tcp: connection refused"),
        "Ready",
        "True",
    )
    assert waiting.terminal is None
