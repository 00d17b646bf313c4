@mesh
Feature: Service mesh: the stage's workloads talk to each other through the mesh
  Llama Stack reaches the model server, a Knative service that accepts only mTLS, through
  the OpenShift Service Mesh (2.x). The stage namespace must be a member of the mesh, which the
  mesh's member controller records with the label maistra.io/member-of (the label the sidecar
  injector selects namespaces by), and its workloads must run with their sidecar.

  @smoke
  Scenario: The mesh control plane is ready
    Then the ServiceMeshControlPlane "data-science-smcp" in namespace "istio-system" has condition "Ready" with status "True" within 5m

  Scenario: The stage namespace is a member of the mesh, enrolled for injection
    Then the ServiceMeshMember "default" has condition "Ready" with status "True" within 2m
    And the stage namespace has label "maistra.io/member-of" with value "istio-system"

  Scenario: Llama Stack runs with its mesh sidecar
    Then every pod with labels "app=llama-stack" has a container named "istio-proxy" within 2m

  Scenario: Llama Stack reaches the model server from inside the mesh
    Then the workload "llama-stack" can reach "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1/models"
