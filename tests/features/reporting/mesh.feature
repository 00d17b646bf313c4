@mesh @tier1
Feature: Mesh membership
  The stage namespace is enrolled in the mesh and its pods run.

  Scenario: The stage namespace is enrolled for sidecar injection
    Given the stage namespace exists
    Then the stage namespace has label "istio.io/rev" with value "data-science-smcp"

  @evidence
  Scenario: Docling pods are ready
    Given the stage namespace exists
    Then all pods with labels "app=docling" are ready
    And the stage namespace exists

  Scenario: The object storage credentials are labelled
    Then the Secret "minio-credentials" has label "app" with value "minio"
