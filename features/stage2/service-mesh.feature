@mesh
Feature: Service mesh membership of the stage namespace
  Llama Stack reaches the model server only through the mesh, so the stage namespace
  must be enrolled for sidecar injection by the stage's control plane.

  Scenario: The stage namespace is enrolled for sidecar injection
    Then the stage namespace has label "istio.io/rev" with value "data-science-smcp"
