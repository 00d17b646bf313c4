"""``scripts/benchmark --peers``: stagecheck against a kubectl script and chainsaw, in one run.

On one private sandbox with the stage-2 world (its data plane and the operators' stand-ins
running, which write the statuses the checks read; only Kubernetes is checked), the same
checks three ways (``benchmarks.bench_checks``), interleaved over several rounds;
then wait reaction, scale (50/500/5,000 pods), a 2,000-pod roll-out followed with ``within``,
a red step among 300 Deployment pods, and the fixed overhead. Requests are counted from the
API server's audit log by user agent. Writes reports/bench.md and reports/bench.png.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import bench_checks
from benchmarks.bench_checks import Check
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane

TOOLS = ("stagecheck", "kubectl", "chainsaw")
# The control plane's own clients; every other user agent in a window is the tool's.
SYSTEM_AGENTS = ("kube-controller-manager", "kube-scheduler", "kwok", "kube-apiserver")
BENCH_NS = "bench"
UNMANAGED_NODE = "bench-unmanaged-node"  # no kwok: the benchmark writes its pods' status


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system of the process and its children
    rss_mib: float  # the largest resident set among them
    code: int
    requests: int
    agents: dict[str, int] = field(default_factory=dict)
    output: str = ""
    asked: list[str] = field(default_factory=list)  # verb and path of each request


@dataclass
class Peers:
    root: Path
    plane: ControlPlane
    work: Path
    kubectl: Path
    chainsaw: Path
    env: dict[str, str]
    audit_offset: int = 0

    # -- running a tool and counting what it asked ---------------------------------------------
    def run(self, argv: list[str], env: dict[str, str] | None = None) -> Sample:
        started_offset = self.audit_size()
        log = self.work / "last-output.txt"
        with log.open("wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                argv, cwd=self.root, env=env or self.env, stdout=out, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        agents, asked = self.requests_since(started_offset)
        return Sample(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
            process.returncode,
            sum(agents.values()),
            agents,
            log.read_text(errors="replace")[-2000:],
            asked,
        )

    def audit_size(self) -> int:
        return self.plane.audit_log.stat().st_size

    def audit_events(self, offset: int) -> Iterator[dict[str, Any]]:
        time.sleep(0.3)  # the log backend writes as requests complete; let the last one land
        with self.plane.audit_log.open("rb") as log:
            log.seek(offset)
            for line in log:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line still being written

    def requests_since(self, offset: int) -> tuple[dict[str, int], list[str]]:
        """Requests by user agent (system components left out), each counted once; and each
        one's verb and path."""
        seen: dict[str, tuple[str, str]] = {}
        for event in self.audit_events(offset):
            agent = event.get("userAgent", "")
            if not any(s in agent for s in SYSTEM_AGENTS) and _agent_family(agent) != "bench":
                uri = event.get("requestURI", "").split("?")[0]
                seen[event["auditID"]] = (_agent_family(agent), f"{event.get('verb')} {uri}")
        counts: dict[str, int] = {}
        for family, _ in seen.values():
            counts[family] = counts.get(family, 0) + 1
        return counts, [asked for _, asked in seen.values()]

    # -- the three tools ------------------------------------------------------------------------
    def stagecheck(self, feature: Path) -> list[str]:
        return [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--target", "sandbox", "--kubeconfig", str(self.plane.kubeconfig), str(feature),
        ]  # fmt: skip

    def chainsaw_test(self, directory: Path) -> list[str]:
        # It reads $KUBECONFIG (the sandbox's).
        return [str(self.chainsaw), "test", "--test-dir", str(directory), "--no-color"]

    def commands(self, checks: list[Check], name: str) -> dict[str, list[str]]:
        """The three ways to run ``checks``, written under the work directory as ``name``."""
        folder = self.work / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.feature").write_text(bench_checks.feature(checks, name))
        (folder / "validate.sh").write_text(bench_checks.validate_sh(checks))
        (folder / "validate.sh").chmod(0o755)
        (folder / "chainsaw" / name).mkdir(parents=True, exist_ok=True)
        (folder / "chainsaw" / name / "chainsaw-test.yaml").write_text(
            bench_checks.chainsaw_test(checks, name)
        )
        return {
            "stagecheck": self.stagecheck(folder / f"{name}.feature"),
            "kubectl": ["bash", str(folder / "validate.sh")],
            "chainsaw": self.chainsaw_test(folder / "chainsaw"),
        }

    def interleaved(
        self,
        commands: dict[str, list[str]],
        rounds: int,
        warm: bool = True,
        envs: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, list[Sample]]:
        """Each command once per round, the order rotated, after one untimed warm-up run."""
        samples: dict[str, list[Sample]] = {tool: [] for tool in commands}
        names = list(commands)
        if warm:
            for tool in names:
                self.run(commands[tool], (envs or {}).get(tool))
        for index in range(rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            for tool in order:
                samples[tool].append(self.run(commands[tool], (envs or {}).get(tool)))
        return samples


def _agent_family(agent: str) -> str:
    if agent == "stagecheck":
        return "bench"  # this benchmark's own client; a run's agent names its run id
    lowered = agent.lower()
    for family in ("stagecheck", "kubectl", "chainsaw"):
        if family in lowered:
            return family
    return agent.split("/")[0] or "unknown"


# -- pods in bulk ----------------------------------------------------------------------------------
BENCH_NODES = [f"bench-node-{i}" for i in range(3)]


def bench_nodes(kube: Kube) -> None:
    for name in BENCH_NODES:
        status = {"allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "5000"}}
        status["capacity"] = status["allocatable"]
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": name, "type": "kwok", "bench": "yes"},
            },
            "spec": {"taints": []},
        }
        kube.create("/api/v1/nodes", node)
        kube.patch(f"/api/v1/nodes/{name}/status", {"status": status})
    kube.apply(
        f"/api/v1/namespaces/{BENCH_NS}",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NS}},
    )


def pod(name: str, labels: dict[str, str], node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": BENCH_NS, "labels": labels},
        "spec": {
            "nodeName": node,  # bound here: the scheduler's pace is not what is measured
            "containers": [{"name": "app", "image": "registry.local/bench:1"}],
        },
    }


def create_pods(kube: Kube, prefix: str, labels: dict[str, str], start: int, stop: int) -> None:
    path = f"/api/v1/namespaces/{BENCH_NS}/pods"

    def one(index: int) -> None:
        kube.create(path, pod(f"{prefix}-{index:05d}", labels, BENCH_NODES[index % 3]))

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(one, range(start, stop)))


def ready_count(kube: Kube, selector: str) -> tuple[int, int]:
    pods = kube.get(f"/api/v1/namespaces/{BENCH_NS}/pods", params={"labelSelector": selector}).get(
        "items", []
    )
    ready = 0
    for item in pods:
        conditions = item.get("status", {}).get("conditions", [])
        ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready, len(pods)


def await_ready(kube: Kube, selector: str, count: int, timeout: float = 600) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        ready, total = ready_count(kube, selector)
        if ready >= count and total >= count:
            return time.monotonic() - started
        time.sleep(1)
    raise RuntimeError(f"{selector}: not {count} pods Ready in {timeout} s")


# -- the measurements ------------------------------------------------------------------------------
def seventeen(peers: Peers, rounds: int) -> dict[str, list[Sample]]:
    return peers.interleaved(peers.commands(bench_checks.CHECKS, "stage2-kubernetes"), rounds)


def wait_reaction(peers: Peers, kube: Kube, samples: int) -> dict[str, list[float]]:
    """Seconds from the API server's write (a ConfigMap created) to the waiting tool's exit."""
    reactions: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for index in range(samples):
        for tool in TOOLS:
            name = f"wait-{tool}-{index}"
            command = _wait_command(peers, tool, name)
            offset = peers.audit_size()
            log = (peers.work / f"{name}.out").open("wb")
            process = subprocess.Popen(
                command, cwd=peers.root, env=peers.env, stdout=log, stderr=subprocess.STDOUT
            )
            _await_request(peers, offset, "configmaps", process)
            time.sleep(1.0)  # its watch or its next poll is under way
            kube.create(
                f"/api/v1/namespaces/{BENCH_NS}/configmaps",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
            )
            written = time.time()
            code = process.wait(timeout=120)
            exited = time.time()
            log.close()
            if code != 0:
                output = (peers.work / f"{name}.out").read_text()
                raise RuntimeError(f"{tool} wait failed: {output}")
            reactions[tool].append(exited - written)
            created, last, asked = 0.0, 0.0, set()
            for event in peers.audit_events(offset):
                family = _agent_family(event.get("userAgent", ""))
                stamp = _stamp(event.get("stageTimestamp", ""))
                if family == "bench" and event.get("verb") == "create":
                    created = stamp
                elif family == tool:
                    last = max(last, stamp)
                    asked.add(event["auditID"])
            reactions.setdefault(f"{tool}: last request", []).append(last - created)
            reactions.setdefault(f"{tool}: requests", []).append(float(len(asked)))
    return reactions


def _wait_command(peers: Peers, tool: str, name: str) -> list[str]:
    if tool == "kubectl":
        return [
            str(peers.kubectl), "wait", "--for=create", f"configmap/{name}", "-n", BENCH_NS,
            "--timeout=60s",
        ]  # fmt: skip
    folder = peers.work / name
    if tool == "stagecheck":
        folder.mkdir(parents=True, exist_ok=True)
        feature = folder / f"{name}.feature"
        feature.write_text(
            f"Feature: wait\n  Scenario: wait\n"
            f'    Then the ConfigMap "{name}" in namespace "{BENCH_NS}" exists within 60s\n'
        )
        return peers.stagecheck(feature)
    test = folder / "chainsaw" / name
    test.mkdir(parents=True, exist_ok=True)
    (test / "chainsaw-test.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "chainsaw.kyverno.io/v1alpha1",
                "kind": "Test",
                "metadata": {"name": name},
                "spec": {
                    "namespace": BENCH_NS,
                    "skipDelete": True,
                    "timeouts": {"assert": "60s"},
                    "steps": [
                        {
                            "try": [
                                {
                                    "assert": {
                                        "resource": {
                                            "apiVersion": "v1",
                                            "kind": "ConfigMap",
                                            "metadata": {"name": name, "namespace": BENCH_NS},
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        )
    )
    return peers.chainsaw_test(folder / "chainsaw")


def _await_request(
    peers: Peers, offset: int, resource: str, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        for event in peers.audit_events(offset):
            agent = event.get("userAgent", "")
            ours = _agent_family(agent) == "bench" or any(s in agent for s in SYSTEM_AGENTS)
            if event.get("objectRef", {}).get("resource") == resource and not ours:
                return
    if process.poll() is not None:
        raise RuntimeError(f"the waiting tool exited early ({process.returncode})")


def scale(peers: Peers, kube: Kube, counts: list[int], rounds: int) -> dict[str, Any]:
    """Pod checks at each count under one selector, grown in place (50, then 500, ...)."""
    selector = "bench=scale"
    results: dict[str, Any] = {}
    created = 0
    for count in counts:
        create_pods(kube, "scale", {"bench": "scale"}, created, count)
        created = count
        ready_after = await_ready(kube, selector, count)
        checks = {
            "pods ready": _pods_check("ready", selector),
            "has container": _pods_check("container", selector),
        }
        results[str(count)] = {"ready_after_s": ready_after}
        for label, check in checks.items():
            name = f"scale-{count}-{label.replace(' ', '-')}"
            results[str(count)][label] = peers.interleaved(
                peers.commands([check], name), rounds, warm=False
            )
    return results


def _pods_check(kind: str, selector: str) -> Check:
    base = (
        bench_checks.pods_ready(selector)
        if kind == "ready"
        else bench_checks.pods_have_container(selector, "app")
    )
    kubectl = [a if a != bench_checks.NAMESPACE else BENCH_NS for a in base.kubectl]
    sentence = base.sentence.replace('" are', f'" in namespace "{BENCH_NS}" are').replace(
        '" has', f'" in namespace "{BENCH_NS}" has'
    )
    chainsaw = json.loads(json.dumps(base.chainsaw).replace(bench_checks.NAMESPACE, BENCH_NS))
    return Check(sentence, kubectl, base.jsonpath, base.expected, chainsaw)


def rollout(peers: Peers, kube: Kube, count: int) -> dict[str, Any]:
    """``count`` pods turn Ready while `all pods ... are ready within 5m` follows them.

    The pods are bound to a node of the benchmark's own that kwok does not manage, so they
    stay Pending until the benchmark writes each one's Ready status (12 at a time): the step
    cannot pass before the last pod is there, and the last pod's Ready is the last of those
    writes in the audit log."""
    selector = "bench=rollout"
    path = f"/api/v1/namespaces/{BENCH_NS}/pods"
    if kube.get_or_none(f"/api/v1/nodes/{UNMANAGED_NODE}") is None:
        kube.create(
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": UNMANAGED_NODE, "labels": {"type": "unmanaged"}},
                "spec": {"taints": [{"key": "stagecheck.io/unmanaged", "effect": "NoSchedule"}]},
            },
        )

    def create(index: int) -> None:
        body = pod(f"rollout-{index:05d}", {"bench": "rollout"}, UNMANAGED_NODE)
        body["spec"]["tolerations"] = [{"operator": "Exists"}]
        kube.create(path, body)

    def turn_ready(index: int) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ready = [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        kube.patch(
            f"{path}/rollout-{index:05d}/status",
            {"status": {"phase": "Running", "conditions": ready}},
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(create, range(count)))
    folder = peers.work / "rollout"
    folder.mkdir(parents=True, exist_ok=True)
    feature = folder / "rollout.feature"
    feature.write_text(
        "Feature: roll-out\n  Scenario: roll-out\n"
        f'    Then all pods with labels "{selector}" in namespace "{BENCH_NS}"'
        " are ready within 5m\n"
    )
    offset = peers.audit_size()
    log = (folder / "out.txt").open("wb")
    process = subprocess.Popen(
        peers.stagecheck(feature), cwd=peers.root, env=peers.env, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    _await_request(peers, offset, "pods", process)
    time.sleep(1.0)
    started = time.time()
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(turn_ready, range(count)))
    written = time.time()
    code = process.wait(timeout=600)
    exited = time.time()
    log.close()
    last_ready, watch_closed = 0.0, 0.0
    for event in peers.audit_events(offset):
        ref = event.get("objectRef", {})
        family = _agent_family(event.get("userAgent", ""))
        stamp = _stamp(event.get("stageTimestamp", ""))
        if family == "bench" and ref.get("subresource") == "status":
            last_ready = max(last_ready, stamp)
        if family == "stagecheck" and event.get("verb") == "watch":
            watch_closed = max(watch_closed, stamp)
    return {
        "exit_code": code,
        "write_s": written - started,
        "last_ready_to_watch_closed_s": watch_closed - last_ready,
        "last_ready_to_exit_s": exited - last_ready,
    }


def _stamp(text: str) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def red_step(peers: Peers, kube: Kube, replicas: int) -> dict[str, Any]:
    """A Deployment of ``replicas`` pods; a step that fails on them (a container they lack)."""
    name = "bench-red"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": BENCH_NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"bench": "yes"},
                    "containers": [{"name": "app", "image": "registry.local/bench:1"}],
                },
            },
        },
    }
    kube.apply(f"/apis/apps/v1/namespaces/{BENCH_NS}/deployments/{name}", deployment)
    await_ready(kube, f"app={name}", replicas)
    folder = peers.work / "red"
    folder.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {}
    for label, container in (("green", "app"), ("red", "istio-proxy")):
        feature = folder / f"{label}.feature"
        feature.write_text(
            f"Feature: {label}\n  Scenario: {label}\n"
            f'    Then every pod with labels "app={name}" in namespace "{BENCH_NS}" has a '
            f'container named "{container}"\n'
        )
        sample = peers.run(peers.stagecheck(feature))
        outcome[label] = sample
    return outcome


def overhead(peers: Peers, rounds: int) -> dict[str, list[Sample]]:
    folder = peers.work / "overhead"
    folder.mkdir(parents=True, exist_ok=True)
    one = folder / "one-step.feature"
    one.write_text("Feature: one step\n  Scenario: one step\n    Then the stage namespace exists\n")
    python = sys.executable
    commands = {
        "pytest --collect-only (one feature)": [*peers.stagecheck(one), "--collect-only"],
        "one-step Kubernetes feature": peers.stagecheck(one),
        "the same, PYTHONDONTWRITEBYTECODE=1": peers.stagecheck(one),
        "kubectl get ns": [str(peers.kubectl), "get", "ns"],
        'python -c "import pytest, pytest_bdd"': [python, "-c", "import pytest, pytest_bdd"],
        "pytest --version": [python, "-m", "pytest", "--version"],
    }
    # Without a bytecode cache every run compiles its modules (and pytest rewrites its plugins').
    uncached = {**peers.env, "PYTHONDONTWRITEBYTECODE": "1"}
    uncached.pop("PYTHONPYCACHEPREFIX")
    return peers.interleaved(
        commands, rounds, envs={"the same, PYTHONDONTWRITEBYTECODE=1": uncached}
    )


# -- the report --------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{median(values):.{digits}f}{unit} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _row(name: str, samples: list[Sample]) -> str:
    ok = all(s.code == 0 for s in samples)
    return (
        f"| {name} | {spread([s.wall for s in samples], ' s')} "
        f"| {spread([s.cpu for s in samples], ' s')} "
        f"| {median([s.rss_mib for s in samples]):.0f} MiB "
        f"| {median([float(s.requests) for s in samples]):.0f} | {'yes' if ok else 'NO'} |"
    )


def _ratios(samples: dict[str, list[Sample]]) -> str:
    base = median([s.wall for s in samples["stagecheck"]])
    parts = []
    for peer in ("kubectl", "chainsaw"):
        other = median([s.wall for s in samples[peer]])
        parts.append(f"stagecheck/{peer} = **{base / other:.2f}×**")
    cpu = median([s.cpu for s in samples["stagecheck"]])
    for peer in ("kubectl", "chainsaw"):
        other = median([s.cpu for s in samples[peer]])
        parts.append(f"CPU stagecheck/{peer} = {cpu / other:.2f}×")
    return "; ".join(parts)


HEADER = "| tool | wall, median (min–max) | CPU (children) | peak RSS | API requests | green |"
RULE = "|---|---|---|---|---|---|"
LABELS = {
    "stagecheck": "stagecheck feature",
    "kubectl": "kubectl script (validate.sh)",
    "chainsaw": "chainsaw test",
}


def report(facts: dict[str, Any], results: dict[str, Any], out: Path) -> str:
    lines = [
        "# stagecheck against its peers",
        "",
        f"Measured {facts['date']} by `scripts/benchmark --peers` on one private sandbox (the "
        "stage-2 world with its data plane and the operators' stand-ins running; the checks "
        "are at Kubernetes level).",
        "",
        f"- machine: {facts['machine']}",
        f"- load: {facts['load']}",
        f"- versions: {facts['versions']}",
        f"- rounds: {facts['rounds']} per figure, interleaved (order rotated), after one untimed "
        "warm-up run each; CPU is user+system of the process and its children (rusage), RSS the "
        "largest among them; requests are counted from the API server's audit log by user agent.",
        "",
    ]
    if "seventeen" in results:
        samples = results["seventeen"]
        lines += [
            f"## The {len(bench_checks.CHECKS)} Kubernetes-level checks of stage 2",
            "",
            "`benchmarks/stage2-kubernetes.feature`, `benchmarks/validate.sh`, "
            "`benchmarks/chainsaw/stage2-kubernetes/chainsaw-test.yaml` (one list of checks, "
            "`benchmarks/bench_checks.py`).",
            "",
            HEADER,
            RULE,
            *(_row(LABELS[t], samples[t]) for t in TOOLS),
            "",
            _ratios(samples),
            "",
        ]
    if "overhead" in results:
        lines += ["## Fixed overhead", "", HEADER, RULE]
        lines += [_row(name, s) for name, s in results["overhead"].items()]
        one = median([s.wall for s in results["overhead"]["one-step Kubernetes feature"]])
        floor = median([s.wall for s in results["overhead"]["pytest --version"]])
        imports = median(
            [s.wall for s in results["overhead"]['python -c "import pytest, pytest_bdd"']]
        )
        lines += [
            "",
            f"A one-step feature takes {one:.2f} s: {one - floor:+.2f} s over a bare "
            f"`pytest --version` ({floor:.2f} s), {one - imports:+.2f} s over importing pytest "
            f"and pytest-bdd ({imports:.2f} s).",
            "",
        ]
    if "wait" in results:
        lines += [
            "## Wait reaction",
            "",
            "From the API server's write (a ConfigMap created, after the tool had started "
            "asking) to the waiting tool's exit: stagecheck `the ConfigMap ... exists within "
            "60s`, `kubectl wait --for=create`, a chainsaw `assert` with a 60 s timeout. "
            "The figure includes each tool's shutdown.",
            "",
            "| tool | write → exit, median | min–max | write → its last request done (audit) "
            "| requests | samples |",
            "|---|---|---|---|---|---|",
        ]
        for tool in TOOLS:
            values = results["wait"][tool]
            lines.append(
                f"| {tool} | {median(values):.2f} s | {min(values):.2f}–{max(values):.2f} s "
                f"| {median(results['wait'][tool + ': last request']):.2f} s "
                f"| {median(results['wait'][tool + ': requests']):.0f} | {len(values)} |"
            )
        lines.append("")
    if "scale" in results:
        lines += [
            "## Scale: pods under one selector",
            "",
            "kwok pods, created through the API and bound to fake nodes, all Ready before the "
            "check. Wall median (min–max), API requests, peak RSS.",
            "",
            "![wall time against pod count, log scale](bench.png)",
            "",
            "| pods | check | stagecheck | kubectl | chainsaw | stagecheck/kubectl "
            "| stagecheck/chainsaw | green |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for count, figures in results["scale"].items():
            for label in ("pods ready", "has container"):
                samples = figures[label]
                cells = [
                    f"{spread([s.wall for s in samples[t]], ' s')}, "
                    f"{median([float(s.requests) for s in samples[t]]):.0f} req, "
                    f"{median([s.rss_mib for s in samples[t]]):.0f} MiB"
                    for t in TOOLS
                ]
                walls = {t: median([s.wall for s in samples[t]]) for t in TOOLS}
                green = all(s.code == 0 for t in TOOLS for s in samples[t])
                lines.append(
                    f"| {count} | {label} | {' | '.join(cells)} "
                    f"| {walls['stagecheck'] / walls['kubectl']:.2f}× "
                    f"| {walls['stagecheck'] / walls['chainsaw']:.2f}× "
                    f"| {'yes' if green else 'NO'} |"
                )
        lines.append("")
    if "rollout" in results:
        r = results["rollout"]
        lines += [
            f"## A {r['pods']}-pod roll-out followed with `within`",
            "",
            '`all pods with labels "bench=rollout" ... are ready within 5m`, started while '
            f"{r['pods']} Pending pods on a node without kwok turned Ready by the benchmark's "
            f"status writes ({r['write_s']:.1f} s for all, 12 at a time); the last pod's Ready "
            "is the last of those writes in the audit log, the step's return the close of its "
            "watch.",
            "",
            f"- last pod Ready → the step's watch closed (audit log): "
            f"**{r['last_ready_to_watch_closed_s']:.2f} s** (goal: under 1 s)",
            f"- last pod Ready → pytest exited: {r['last_ready_to_exit_s']:.2f} s "
            f"(exit code {r['exit_code']})",
            "",
        ]
    if "red" in results:
        red, green = results["red"]["red"], results["red"]["green"]
        lines += [
            f"## A red step among {results['red']['pods']} Deployment pods",
            "",
            '`every pod with labels "app=bench-red" ... has a container named '
            '"istio-proxy"` (red: none has it, the sidecar diagnosis and evidence run) against '
            'the same step with "app" (green).',
            "",
            "| run | wall | API requests (whole run) | exit |",
            "|---|---|---|---|",
            f"| red | {red.wall:.2f} s | {red.requests} | {red.code} |",
            f"| green | {green.wall:.2f} s | {green.requests} | {green.code} |",
            "",
            f"The red step with its evidence: **{red.requests - green.requests + 1}** requests "
            "beyond the green run's fixed part (the green step's one list counted back in; "
            "goal: fewer than 20). The red run's requests, in order:",
            "",
            "```",
            *red.asked,
            "```",
            "",
        ]
    lines += [
        "## How to run",
        "",
        "```bash",
        "scripts/build-peers            # once: kubectl and chainsaw from the Go module proxy",
        "scripts/benchmark --peers      # a private sandbox; writes reports/bench.md, bench.png",
        "scripts/benchmark --peers --rounds 3 --only seventeen,overhead --pods 50,500/500/300",
        "```",
        "",
    ]
    text = "\n".join(lines)
    (out / "bench.md").write_text(text)
    return text


def plot(results: dict[str, Any], path: Path, python: str) -> bool:
    if "scale" not in results:
        return False
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("benchmark: installing matplotlib for the figure", file=sys.stderr)
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib>=3.8"], check=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [int(c) for c in results["scale"]]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, label in zip(axes, ("pods ready", "has container"), strict=True):
        for tool in TOOLS:
            walls = [
                median([s.wall for s in results["scale"][str(c)][label][tool]]) for c in counts
            ]
            axis.plot(counts, walls, marker="o", label=tool)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("pods under the selector")
        axis.set_title(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("wall time, median (s)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


# -- the run -----------------------------------------------------------------------------------
def _peer_binaries(root: Path) -> tuple[Path, Path]:
    script = root / "scripts" / "build-peers"
    subprocess.run([str(script)], check=True, stdout=sys.stderr)

    def where(name: str) -> Path:
        found = subprocess.run(
            [str(script), "--print-bin", name], check=True, capture_output=True, text=True
        )
        return Path(found.stdout.strip())

    return where("kubectl"), where("chainsaw")


def _version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _facts(peers: Peers, rounds: int) -> dict[str, Any]:
    memory = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    pytest_bdd = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('pytest-bdd'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    kubectl = _version([str(peers.kubectl), "version", "--client"])
    chainsaw = " ".join(_version([str(peers.chainsaw), "version"]).split()[:3])
    commit = subprocess.run(
        ["git", "-C", str(peers.root), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores (nproc), {int(memory) / 2**20:.0f} GiB memory, "
        f"{platform.platform()}",
        "versions": f"stagecheck {commit}, Python {platform.python_version()}, "
        f"pytest-bdd {pytest_bdd}, Kubernetes v1.37.2 (control plane), {kubectl}, "
        f"chainsaw {chainsaw}",
        "rounds": rounds,
        "load": "",
    }


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


@contextmanager
def sandbox(root: Path, state: Path) -> Iterator[ControlPlane]:
    """The whole sandbox, private to the run, started and stopped by ``scripts/sandbox`` in a
    process of its own: the operators' stand-ins write the statuses the checks read from what
    the data plane's servers do, so the world is the one the stage-2 run checks. Not started
    from this process, which stays small: Linux counts a parent's memory at fork in its
    child's peak RSS, so a large parent would hide the tools' own peaks."""
    env = {**os.environ, "STAGECHECK_SANDBOX_DIR": str(state)}
    env.pop("STAGECHECK_TARGET", None)
    command = [sys.executable, "-m", "stagecheck.sandbox.cli", "--root", str(root)]
    try:
        subprocess.run([*command, "up"], env=env, check=True, stdout=subprocess.DEVNULL)
        yield ControlPlane(root, state)
    finally:
        subprocess.run([*command, "down"], env=env, check=False, stdout=subprocess.DEVNULL)


def main(
    root: Path, rounds: int, parts: set[str], out: Path, pods: tuple[list[int], int, int]
) -> int:
    """``pods``: the scale counts, the roll-out's pods, the red step's Deployment replicas."""
    counts, rollout_pods, red_pods = pods
    kubectl, chainsaw = _peer_binaries(root)
    out.mkdir(parents=True, exist_ok=True)
    # The generated features live under the checkout: pytest finds its rootdir and conftest.py
    # only above the files it is given.
    with (
        tempfile.TemporaryDirectory(prefix="stagecheck-peers-") as tmp,
        tempfile.TemporaryDirectory(prefix=".work-", dir=root / "benchmarks") as work_dir,
    ):
        work = Path(work_dir)
        state = Path(tmp) / "sandbox"
        home = Path(tmp) / "home"  # kubectl's discovery cache, away from the user's ~/.kube
        home.mkdir()
        env = {
            **os.environ,
            # Bytecode cached as on a user's machine, but away from the checkout and the venv.
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
            "HOME": str(home),
            "KUBECONFIG": str(state / "kubeconfig"),
            "KUBECTL": str(kubectl),
            "STAGECHECK_SANDBOX_DIR": str(state),
            "STAGECHECK_REPORTS": str(work / "reports"),
        }
        env.pop("STAGECHECK_TARGET", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with sandbox(root, state) as plane:
            peers = Peers(root, plane, work, kubectl, chainsaw, env)
            facts = _facts(peers, rounds)
            loads = [_load()]
            kube = plane.connect()
            results: dict[str, Any] = {}
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("seventeen", lambda: seventeen(peers, rounds)),
                ("overhead", lambda: overhead(peers, rounds)),
                ("setup", lambda: bench_nodes(kube)),
                ("wait", lambda: wait_reaction(peers, kube, rounds)),
                ("scale", lambda: scale(peers, kube, counts, max(3, rounds // 2))),
                ("rollout", lambda: {**rollout(peers, kube, rollout_pods), "pods": rollout_pods}),
                ("red", lambda: {**red_step(peers, kube, red_pods), "pods": red_pods}),
            ]
            try:
                for name, step in steps:
                    if name != "setup" and name not in parts:
                        continue
                    print(f"[{time.strftime('%T')}] {name}", file=sys.stderr, flush=True)
                    outcome = step()
                    loads.append(_load())
                    if name != "setup":
                        results[name] = outcome
                        facts["load"] = _loads(loads)
                        report(facts, results, out)
            finally:
                kube.close()
    facts["load"] = _loads(loads)
    print(report(facts, results, out))
    if plot(results, out / "bench.png", sys.executable):
        print(f"wrote {out / 'bench.md'} and {out / 'bench.png'}", file=sys.stderr)
    return 0


def _loads(loads: list[str]) -> str:
    return (
        "load average (1/5/15 min) at the start and after each part: "
        + "; ".join(loads)
        + " (the machine is shared: another engineer's test suites may run meanwhile)"
    )


PARTS = ("seventeen", "overhead", "wait", "scale", "rollout", "red")
