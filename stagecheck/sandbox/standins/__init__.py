"""Stand-in controllers: what the stage's operators would do, done in the sandbox by their rules.

The real operators cannot run here (their Go modules are not served), so while the sandbox is
up one process (``python -m stagecheck.sandbox.standins``, started by ``scripts/sandbox up``)
runs small controllers beside the control plane. Each follows its operator's real rules, read
from that operator's source (named in each module), and knowingly differs where its module
says so. The world files hold only what GitOps would apply; every status a check reads was
written by one of these controllers, by a webhook the API server called, or by kwok.

    base.py          the toolkit: context, owned objects, conditions, status writes
    runner.py        the process: one pass over every controller, twice a second
    process.py       starting, stopping and judging that process from the sandbox CLI
    storage.py       a stand-in volume provisioner: binds pending PVCs
    routes.py        a stand-in for OpenShift's route host assignment and router (Admitted)
    kserve.py        a stand-in for KServe 0.15 Serverless with Knative: InferenceService
    llamastack.py    a stand-in for llama-stack-k8s-operator v0.3.0: LlamaStackDistribution
    calls.py         the HTTP calls those two make to the servers they manage
    mesh.py          stand-ins for OSSM 2.5's operator: control plane, member roll, members
    mesh_injector.py a stand-in for istiod's sidecar injector: a real webhook the API server
                     calls for pods in member namespaces
    mesh_gate.py     the mesh's data path: STRICT mTLS resets a caller without istio-proxy
                     (PeerAuthentications by port), CONNECT tunnels, and the router's data
                     path for admitted Routes under the namespace's NetworkPolicies
    node.py          a stand-in kubelet: one node that really runs its pods' commands
    pod_volumes.py   what that node mounts: the service account's projected volume,
                     ConfigMaps, Secrets, emptyDirs and claims
    images.py        the images that node has a copy of (the project's own, this checkout)
    pilot_agent.py   the sidecar agent's quit endpoint (15020) for that node's pods
    dataplane_kubelet.py  the kubelet of the world's pods a data-plane process answers for

A controller is level-triggered: each pass it reads what it owns and writes only what
differs, so a pass that finds the world as it should be writes nothing (the sandbox is
"settled").
"""
