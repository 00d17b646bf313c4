"""The Kubernetes step vocabulary: thin adapters from sentences to ``Cluster.expect_*``.

Every sentence works as Given or Then, and every positive form takes an optional
``within <duration>`` (without it the state is checked once, now).

    the stage namespace exists
    the stage namespace has label "istio.io/rev" with value "data-science-smcp"
    the <Kind> "<name>" [in namespace "<ns>"] exists
    the <Kind> "<name>" [in namespace "<ns>"] has label "<key>" with value "<value>"
    the <Kind> "<name>" [in namespace "<ns>"] has condition "<type>" with status "<status>"
    the <Kind> "<name>" [in namespace "<ns>"] is in phase "<phase>"
    the <Kind> "<name>" [in namespace "<ns>"] matches:  (a YAML docstring, partial match)
    the deployment "<name>" [in namespace "<ns>"] is available [with N/M replicas ready]
    all pods with labels "<selector>" [in namespace "<ns>"] are ready
    every pod with labels "<selector>" [in namespace "<ns>"] has a container named "<name>"
    the <Kind> "<name>" [in namespace "<ns>"] is ready         (by its kind's rule: readiness.py)
    the Route "<name>" [in namespace "<ns>"] is admitted
    the PersistentVolumeClaim "<name>" [in namespace "<ns>"] is bound
    the <Kind> "<name>" [in namespace "<ns>"] has keys "<key>, <key>"   (Secret, ConfigMap)
    the operator "<name>" is installed [at version "<X>" or later] [in namespace "<ns>"]
    the Kubernetes|OpenShift version is "<X>" or later
    the logs of the deployment "<name>" | pods with labels "<selector>" [in namespace "<ns>"]
        contain "<text>" [within ...] | contain no line matching "<regex>"

<Kind> is resolved through API discovery: Deployment, deployments, deploy, or with its group
(InferenceService.serving.kserve.io) when two groups serve the same kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pytest_bdd import given, parsers, step, when

from stagecheck.config import Target
from stagecheck.engine import logs
from stagecheck.engine.durations import parse_duration
from stagecheck.engine.kubernetes import Cluster
from stagecheck.reporting.versions import SeenVersions

IN_NS = r'(?: in namespace "(?P<namespace>[^"]+)")?'
OBJECT = r'the (?P<kind>[A-Za-z][\w.\-]*) "(?P<name>[^"]+)"' + IN_NS
# Anything after "within" is the duration: a malformed one ("5 minutes-ish") is named as not a
# duration by its converter, never reported as an undefined step.
WITHIN = r'(?: within (?P<within>\d[^"]*?))?'
PODS = r'pods? with labels "(?P<selector>[^"]+)"' + IN_NS


StepFunction = TypeVar("StepFunction", bound=Callable[..., Any])


def sentence(pattern: str) -> Callable[[StepFunction], StepFunction]:
    """A step usable as Given or Then, matched by a regular expression."""
    return cast(
        Callable[[StepFunction], StepFunction], step(parsers.re(pattern), converters=CONVERTERS)
    )


def action(pattern: str) -> Callable[[StepFunction], StepFunction]:
    """A step that changes the cluster or its services: a Given or a When sets a scenario up,
    a Then only checks, so it is never a Then."""

    def register(func: StepFunction) -> StepFunction:
        # stacklevel 2: the step's fixture goes into the module that defines the step.
        given(parsers.re(pattern), converters=CONVERTERS, stacklevel=2)(func)
        when(parsers.re(pattern), converters=CONVERTERS, stacklevel=2)(func)
        return func  # pytest-bdd registers it and hands the same function back

    return register


def _within(text: str | None) -> float | None:
    return parse_duration(text) if text else None


def _count(text: str | None) -> int | None:
    return int(text) if text else None


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


CONVERTERS: dict[str, Any] = {
    "within": _within,
    "ready": _count,
    "desired": _count,
    "keys": _names,
}


@sentence(r"the stage namespace exists" + WITHIN)
def stage_namespace_exists(cluster: Cluster, target: Target, within: float | None) -> None:
    cluster.expect_exists("Namespace", target.namespace, None, within)


@sentence(r'the stage namespace has label "(?P<key>[^"]+)" with value "(?P<value>[^"]*)"' + WITHIN)
def stage_namespace_label(
    cluster: Cluster, target: Target, key: str, value: str, within: float | None
) -> None:
    cluster.expect_label("Namespace", target.namespace, None, key, value, within)


@sentence(OBJECT + " exists" + WITHIN)
def object_exists(
    cluster: Cluster, kind: str, name: str, namespace: str | None, within: float | None
) -> None:
    cluster.expect_exists(kind, name, namespace, within)


@sentence(OBJECT + r' has label "(?P<key>[^"]+)" with value "(?P<value>[^"]*)"' + WITHIN)
def object_label(
    cluster: Cluster,
    kind: str,
    name: str,
    namespace: str | None,
    key: str,
    value: str,
    within: float | None,
) -> None:
    cluster.expect_label(kind, name, namespace, key, value, within)


@sentence(OBJECT + r' has condition "(?P<type>[^"]+)" with status "(?P<status>[^"]+)"' + WITHIN)
def object_condition(
    cluster: Cluster,
    kind: str,
    name: str,
    namespace: str | None,
    type: str,
    status: str,
    within: float | None,
) -> None:
    cluster.expect_condition(kind, name, namespace, type, status, within)


@sentence(OBJECT + r' is in phase "(?P<phase>[^"]+)"' + WITHIN)
def object_phase(
    cluster: Cluster, kind: str, name: str, namespace: str | None, phase: str, within: float | None
) -> None:
    cluster.expect_phase(kind, name, namespace, phase, within)


@sentence(OBJECT + " matches" + WITHIN + ":?")
def object_matches(
    cluster: Cluster,
    kind: str,
    name: str,
    namespace: str | None,
    within: float | None,
    docstring: str,
) -> None:
    cluster.expect_matches(kind, name, namespace, docstring, within)


@sentence(
    r'the [Dd]eployment "(?P<name>[^"]+)"'
    + IN_NS
    + r" is available(?: with (?P<ready>\d+)/(?P<desired>\d+) replicas ready)?"
    + WITHIN
)
def deployment_available(
    cluster: Cluster,
    name: str,
    namespace: str | None,
    ready: int | None,
    desired: int | None,
    within: float | None,
) -> None:
    cluster.expect_deployment_available(name, namespace, ready, desired, within)


@sentence("all " + PODS + " are ready" + WITHIN)
def pods_ready(
    cluster: Cluster, selector: str, namespace: str | None, within: float | None
) -> None:
    cluster.expect_pods_ready(selector, namespace, within)


@sentence("every " + PODS + r' has a container named "(?P<container>[^"]+)"' + WITHIN)
def pods_have_container(
    cluster: Cluster, selector: str, namespace: str | None, container: str, within: float | None
) -> None:
    cluster.expect_pods_have_container(selector, namespace, container, within)


@sentence(OBJECT + " is ready" + WITHIN)
def object_ready(
    cluster: Cluster, kind: str, name: str, namespace: str | None, within: float | None
) -> None:
    cluster.expect_kind_ready(kind, name, namespace, within)


@sentence(OBJECT + " is admitted" + WITHIN)
def route_admitted(
    cluster: Cluster, kind: str, name: str, namespace: str | None, within: float | None
) -> None:
    cluster.expect_kind_ready(kind, name, namespace, within, only="Route")


@sentence(OBJECT + " is bound" + WITHIN)
def claim_bound(
    cluster: Cluster, kind: str, name: str, namespace: str | None, within: float | None
) -> None:
    cluster.expect_kind_ready(kind, name, namespace, within, only="PersistentVolumeClaim")


@sentence(OBJECT + r' has keys "(?P<keys>[^"]+)"' + WITHIN)
def object_keys(
    cluster: Cluster,
    kind: str,
    name: str,
    namespace: str | None,
    keys: list[str],
    within: float | None,
) -> None:
    cluster.expect_keys(kind, name, namespace, keys, within)


@sentence(
    r'the operator "(?P<operator>[^"]+)" is installed'
    r'(?: at version "(?P<version>[^"]+)" or later)?' + IN_NS + WITHIN
)
def operator_installed(
    cluster: Cluster,
    seen_versions: SeenVersions,
    operator: str,
    version: str | None,
    namespace: str | None,
    within: float | None,
) -> None:
    found = cluster.expect_operator(operator, version, namespace, within)
    seen_versions.record(f"operator {operator}", found)


@sentence(r'the (?P<platform>Kubernetes|OpenShift) version is "(?P<version>[^"]+)" or later')
def platform_version(
    cluster: Cluster, seen_versions: SeenVersions, platform: str, version: str
) -> None:
    seen_versions.record(platform, cluster.expect_platform_version(platform, version))


LOGS_OF = (
    r'the logs of (?:the [Dd]eployment "(?P<deployment>[^"]+)"'
    r'|pods with labels "(?P<selector>[^"]+)")' + IN_NS
)


@sentence(LOGS_OF + r' contain "(?P<text>[^"]+)"' + WITHIN)
def logs_contain(
    cluster: Cluster,
    deployment: str | None,
    selector: str | None,
    namespace: str | None,
    text: str,
    within: float | None,
) -> None:
    source = logs.Source(namespace or cluster.namespace, deployment, selector)
    logs.expect_line(cluster.kube, source, text, within)


@sentence(LOGS_OF + r' contain no line matching "(?P<pattern>[^"]+)"')
def logs_contain_no(
    cluster: Cluster,
    deployment: str | None,
    selector: str | None,
    namespace: str | None,
    pattern: str,
) -> None:
    source = logs.Source(namespace or cluster.namespace, deployment, selector)
    logs.expect_no_line(cluster.kube, source, pattern)
