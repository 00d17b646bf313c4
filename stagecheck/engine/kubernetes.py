"""The Kubernetes expectations behind the step vocabulary.

Each ``expect_*`` resolves the kind, builds the queries, waits through ``observe`` and, when
the expectation does not hold, raises a StepFailure with object, expected, actual, since,
cause and evidence. Steps call exactly one of these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from stagecheck.engine import checks, mesh, readiness, versions
from stagecheck.engine.evidence import events_for, object_yaml, pod_logs, pods_status
from stagecheck.engine.llama_stack_stores import stores_cause
from stagecheck.engine.mesh import Diagnosis
from stagecheck.engine.outcome import Evidence, Observation, StepFailure
from stagecheck.engine.related import related_pods, selector_string
from stagecheck.engine.wait import Query, Snapshot, observe
from stagecheck.errors import KubeApiError, SpecificationError, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery, ResourceType

# The pods' app label of each Llama Stack server kind's operator (llama-stack-k8s-operator
# controllers/resource_helper.go; ogx-k8s-operator); the instance label names the resource.
DISTRIBUTION_PODS = {"LlamaStackDistribution": "llama-stack", "OGXServer": "ogx"}


@dataclass(frozen=True)
class ObjectRef:
    resource: ResourceType
    name: str
    namespace: str | None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.kind} {where}{self.name}"


class Cluster:
    """One target's cluster as the step vocabulary sees it."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.discovery = Discovery(kube)
        self.namespace = namespace

    # -- references --------------------------------------------------------------------------
    def ref(self, kind: str, name: str, namespace: str | None = None) -> ObjectRef:
        resource = self.discovery.resolve(kind)
        return ObjectRef(
            resource, name, (namespace or self.namespace) if resource.namespaced else None
        )

    def _query(self, ref: ObjectRef) -> Query:
        return Query("object", ref.resource, ref.namespace, name=ref.name)

    # -- expectations ------------------------------------------------------------------------
    def expect_exists(
        self, kind: str, name: str, namespace: str | None, within: float | None
    ) -> None:
        ref = self.ref(kind, name, namespace)
        self._expect_object(ref, "it exists", checks.exists, within)

    def expect_label(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        key: str,
        value: str,
        within: float | None,
    ) -> None:
        ref = self.ref(kind, name, namespace)
        self._expect_object(
            ref, f"label {key}={value}", lambda o: checks.has_label(o, key, value), within
        )

    def expect_condition(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        type_: str,
        status: str,
        within: float | None,
    ) -> None:
        ref = self.ref(kind, name, namespace)
        self._expect_object(
            ref,
            f"condition {type_}={status}",
            lambda o: checks.condition_is(o, type_, status),
            within,
        )

    def expect_phase(
        self, kind: str, name: str, namespace: str | None, phase: str, within: float | None
    ) -> None:
        ref = self.ref(kind, name, namespace)
        self._expect_object(ref, f"phase {phase}", lambda o: checks.phase_is(o, phase), within)

    def expect_matches(
        self, kind: str, name: str, namespace: str | None, expected_yaml: str, within: float | None
    ) -> None:
        try:
            expected: Any = yaml.safe_load(expected_yaml)
        except yaml.YAMLError as error:
            raise SpecificationError(f"the partial object is not valid YAML: {error}") from None
        if not isinstance(expected, dict):
            raise SpecificationError("the partial object must be a YAML mapping of fields to match")
        ref = self.ref(kind, name, namespace)
        self._expect_object(
            ref, "the written fields to match", lambda o: checks.matches(o, expected), within
        )

    def expect_deployment_available(
        self,
        name: str,
        namespace: str | None,
        ready: int | None,
        desired: int | None,
        within: float | None,
    ) -> None:
        ref = self.ref("Deployment.apps", name, namespace)
        expected = "Available=True" + (
            f" with {ready}/{desired} replicas ready" if ready is not None else ""
        )

        def check(snapshot: Snapshot) -> Observation:
            return checks.deployment_available(
                snapshot.one("object"), snapshot.all("pods"), ready, desired
            )

        # The Deployment alone decides a pass; its pods explain a failure and end a hopeless
        # wait (a pod that cannot pull its image changes nothing in the Deployment's status).
        # So they are read only when the Deployment, read first, does not pass.
        first = observe(self.kube, [self._query(ref)], check, None)
        if first.observation.ok:
            return
        deployment = first.snapshot.one("object")
        selector = selector_string(deployment) if deployment else None
        queries = [self._query(ref)]
        if selector:
            pods = self.discovery.resolve("Pod")
            queries.append(Query("pods", pods, ref.namespace, label_selector=selector))
        self._expect(str(ref), expected, queries, check, within, [ref.name])

    def expect_ready(self, ref: ObjectRef, within: float | None) -> None:
        """Ready by the rule of the object's kind (``readiness``), named in the expectation."""
        if ref.resource.kind == "Deployment":
            self.expect_deployment_available(ref.name, ref.namespace, None, None, within)
            return
        rule = readiness.rule_for(ref.resource)
        expected = f"ready ({ref.resource.kind}: {rule.says})"
        self._expect_object(ref, expected, lambda o: readiness.judge(rule, o), within)

    def expect_kind_ready(
        self, kind: str, name: str, namespace: str | None, within: float | None, only: str = ""
    ) -> None:
        """``is ready``; with ``only``, the sentence is for that kind alone (``is bound``)."""
        ref = self.ref(kind, name, namespace)
        if only and ref.resource.kind != only:
            raise SpecificationError(
                f"{ref}: this sentence is for a {only}; for a {ref.resource.kind} write "
                f"'the {ref.resource.kind} \"{name}\" is ready'"
            )
        self.expect_ready(ref, within)

    def expect_operator(
        self, operator: str, version: str | None, namespace: str | None, within: float | None
    ) -> str:
        """An OLM operator installed: its ClusterServiceVersion (``<operator>.<version>``, or
        labelled ``operators.coreos.com/<operator>.<namespace>``) in phase Succeeded, at
        ``version`` or later (``spec.version``, compared as a version). Returns the version."""
        kind = "ClusterServiceVersion.operators.coreos.com"
        try:
            resource = self.discovery.resolve(kind)
        except UnknownKind:
            raise UnknownKind(
                "the cluster serves no ClusterServiceVersion: operators here are not installed "
                "through OLM; check the operator's Deployment instead ('the deployment ... is "
                "available')"
            ) from None
        namespace = namespace or self.namespace
        wanted = versions.parse_version(version) if version else None
        query = Query("csvs", resource, namespace)
        seen: list[str] = []

        def check(snapshot: Snapshot) -> Observation:
            found, at = checks.operator_installed(snapshot.all("csvs"), operator, wanted)
            seen[:] = [at] if at else []
            return found

        expected = "installed, phase Succeeded"
        expected += f", at version {version} or later" if version else ""
        self._expect(f"operator {operator} in {namespace}", expected, [query], check, within)
        return seen[0] if seen else ""

    def expect_platform_version(self, platform: str, wanted: str) -> str:
        """The cluster's Kubernetes (``/version``) or OpenShift (the ClusterVersion ``version``:
        ``status.desired.version``) at ``wanted`` or later; returns the version found."""
        minimum = versions.parse_version(wanted)
        if platform == "Kubernetes":
            found = str(self.kube.version().get("gitVersion", ""))
            where = "the API server's /version"
        else:
            try:
                resource = self.discovery.resolve("ClusterVersion.config.openshift.io")
            except UnknownKind:
                raise StepFailure(
                    subject="the cluster", expected=f"OpenShift {wanted} or later",
                    observation=Observation(ok=False, actual="not OpenShift (no ClusterVersion)"),
                ) from None  # fmt: skip
            cluster_version = self.kube.get_or_none(resource.object_path("version", None)) or {}
            found = str(
                ((cluster_version.get("status") or {}).get("desired") or {}).get("version", "")
            )
            where = "ClusterVersion version, status.desired.version"
        if not found or versions.parse_version(found) < minimum:
            raise StepFailure(
                subject=f"the cluster's {platform}",
                expected=f"version {wanted} or later",
                observation=Observation(ok=False, actual=f"version {found or 'unknown'} ({where})"),
            )
        return found

    def expect_keys(
        self, kind: str, name: str, namespace: str | None, keys: list[str], within: float | None
    ) -> None:
        """A Secret's or ConfigMap's data holds these keys; values are never read out."""
        ref = self.ref(kind, name, namespace)
        self._expect_object(
            ref, f"keys {', '.join(keys)}", lambda o: checks.has_keys(o, keys), within
        )

    def expect_distribution_ready(self, name: str, within: float | None) -> None:
        """A Llama Stack server resource in phase Ready: LlamaStackDistribution, or OGXServer
        where the cluster serves that (Llama Stack's 2026 rename), chosen by discovery; where
        both are served (a migration), the kind that holds an object of that name."""
        kinds = ("LlamaStackDistribution.llamastack.io", "OGXServer.ogx.io")
        served: list[ObjectRef] = []
        for kind in kinds:
            try:
                served.append(self.ref(kind, name))
            except UnknownKind:
                continue
        if not served:
            raise UnknownKind(
                f"the cluster serves neither {' nor '.join(kinds)}: is the Llama Stack (OGX) "
                "operator installed?"
            )
        ref = served[0]
        if len(served) > 1:  # which kind holds it is asked only where there is a choice
            ref = next(
                (
                    r
                    for r in served
                    if self.kube.get_or_none(r.resource.object_path(r.name, r.namespace))
                ),
                served[0],
            )
        # Its phase decides; its pods (the operator's labels) explain a phase that is not Ready
        # and end a hopeless wait: the operator's phase stays Initializing while its pod
        # crash-loops (llama-stack-k8s-operator, ogx-k8s-operator: phase from readyReplicas).
        # A pod's log saying it cannot write its stores under a read-only mount adds that.
        app = DISTRIBUTION_PODS[ref.resource.kind]
        pods = Query(
            "pods",
            self.discovery.resolve("Pod"),
            ref.namespace,
            label_selector=f"app={app},app.kubernetes.io/instance={ref.name}",
        )

        def seen(snapshot: Snapshot) -> Observation:
            return checks.phase_with_pods(snapshot.one("object"), snapshot.all("pods"), "Ready")

        def explain(snapshot: Snapshot) -> Diagnosis | None:
            stores = stores_cause(self.kube, snapshot.one("object"), snapshot.all("pods"))
            if stores is None:
                return None
            return Diagnosis("; ".join(c for c in (seen(snapshot).cause, stores) if c), [])

        self._expect(
            str(ref), "phase Ready", [self._query(ref), pods], seen, within, [ref.name], explain
        )

    def expect_docling_ready(self, name: str, within: float | None) -> None:
        """Docling's DoclingServe available where the cluster serves the kind (the Docling
        operator), else its Deployment of that name available.

        The docling-operator writes no ``Ready`` condition and no phase: its condition
        ``DeploymentAvailable`` is a copy of the ``Available`` condition of the Deployment
        ``<name>-deployment`` (docling-operator internal/reconcilers/status.go), so that is
        the rule applied, and the failure says so."""
        kind = "DoclingServe.docling.github.io"
        try:
            self.discovery.resolve(kind)
        except UnknownKind:
            self.expect_deployment_available(name, None, None, None, within)
            return
        ref = self.ref(kind, name)
        self._expect_object(
            ref,
            f"condition {checks.DOCLING_AVAILABLE}=True ({checks.DOCLING_RULE})",
            checks.docling_available,
            within,
        )

    def expect_pods_ready(self, selector: str, namespace: str | None, within: float | None) -> None:
        namespace = namespace or self.namespace
        query = Query("pods", self.discovery.resolve("Pod"), namespace, label_selector=selector)
        self._expect(
            f"pods with labels {selector} in {namespace}",
            "every pod Ready",
            [query],
            lambda s: checks.pods_ready(s.all("pods"), selector, namespace),
            within,
        )

    def expect_pods_have_container(
        self, selector: str, namespace: str | None, container: str, within: float | None
    ) -> None:
        namespace = namespace or self.namespace
        query = Query("pods", self.discovery.resolve("Pod"), namespace, label_selector=selector)

        diagnoses: dict[str, Diagnosis | None] = {}

        def explain(snapshot: Snapshot) -> Diagnosis | None:
            missing = [
                p for p in snapshot.all("pods") if container not in checks.container_names(p)
            ]
            if container != mesh.SIDECAR or not missing:
                return None
            uid = missing[0]["metadata"]["uid"]  # diagnose each pod once
            if uid not in diagnoses:
                diagnoses[uid] = mesh.safe_explain(self.kube, self.discovery, missing[0])
            return diagnoses[uid]

        def check(snapshot: Snapshot) -> Observation:
            found = checks.pods_have_container(snapshot.all("pods"), selector, namespace, container)
            if found.ok or container != mesh.SIDECAR:
                return found
            diagnosis = explain(snapshot)
            if diagnosis is not None and diagnosis.final:
                return replace(found, terminal="the workload is rolled out without the sidecar")
            return found

        self._expect(
            f"pods with labels {selector} in {namespace}",
            f"every pod to have a container named {container}",
            [query],
            check,
            within,
            explain=explain,
        )

    # -- the one place that waits and explains -----------------------------------------------
    def _expect_object(
        self,
        ref: ObjectRef,
        expected: str,
        check: Callable[[JsonObject | None], Observation],
        within: float | None,
    ) -> None:
        self._expect(
            str(ref),
            expected,
            [self._query(ref)],
            lambda s: check(s.one("object")),
            within,
            [ref.name],
        )

    def _expect(
        self,
        subject: str,
        expected: str,
        queries: list[Query],
        check: Callable[[Snapshot], Observation],
        within: float | None,
        names: list[str] | None = None,
        explain: Callable[[Snapshot], Diagnosis | None] | None = None,
    ) -> None:
        result = observe(self.kube, queries, check, within)
        if result.observation.ok:
            return
        observation = result.observation
        evidence = self._evidence(result.snapshot, names or [])
        if observation.actual == checks.NOT_FOUND:
            observation = self._explain_absence(queries[0], observation)
        diagnosis = explain(result.snapshot) if explain else None
        if diagnosis is not None:
            observation = replace(observation, cause=diagnosis.cause)
            evidence = diagnosis.evidence + evidence
        raise StepFailure(
            subject=subject,
            expected=expected,
            observation=observation,
            waited=result.waited if within else None,
            evidence=evidence,
        )

    def _explain_absence(self, query: Query, observation: Observation) -> Observation:
        if (
            query.namespace
            and query.resource.kind != "Namespace"
            and self.kube.get_or_none(f"/api/v1/namespaces/{query.namespace}") is None
        ):
            cause = f"namespace {query.namespace} does not exist"
            return Observation(ok=False, actual=observation.actual, cause=cause)
        return observation

    def _evidence(self, snapshot: Snapshot, names: list[str]) -> list[Evidence]:
        """Gather what a reader needs to see why; never fails the step for lack of it."""
        found: list[Evidence] = []
        try:
            obj = snapshot.one("object")
            pods = snapshot.all("pods")
            if obj is not None:
                found.append(object_yaml(obj))
                if not pods:
                    pods = related_pods(self.kube, self.discovery, obj)
            pods = sorted(pods, key=checks.pod_is_ready)  # not ready first: they say why
            namespace = (obj or (pods[0] if pods else {})).get("metadata", {}).get("namespace")
            pod_names = [p["metadata"]["name"] for p in pods]
            for item in (events_for(self.kube, namespace, [*names, *pod_names]), pods_status(pods)):
                if item is not None:
                    found.append(item)
            found.extend(object_yaml(p) for p in pods[:3] if p is not obj)
            logs = pod_logs(self.kube, pods)
            if logs is not None:
                found.append(logs)
        except KubeApiError as error:
            found.append(Evidence(name="evidence error", text=str(error)))
        return found
