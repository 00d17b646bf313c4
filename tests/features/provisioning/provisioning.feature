Feature: Provisioning a stage from its GitOps folder, and undoing it

  Scenario: A kustomization is applied, becomes ready, and is removed afterwards
    Given the secret "dspa-minio-credentials" holds "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" from "tests/features/provisioning/minio.env"
    And the manifests in "tests/features/provisioning/stage" are applied and ready within 60s
    Then the deployment "rag-api" is available with 2/2 replicas ready
    And the ConfigMap "rag-settings" exists
    And the Gizmo "first-gizmo" exists
    And the Secret "dspa-minio-credentials" exists

  Scenario: The stage namespace is labelled for the length of the scenario
    Given the stage namespace is labelled "istio.io/rev" with value "basic"
    Then the stage namespace has label "istio.io/rev" with value "basic"

  Scenario: A manifest that is not valid YAML applies nothing
    Given the manifests in "tests/features/provisioning/broken-yaml" are applied

  Scenario: A manifest of a kind the cluster does not serve applies nothing
    Given the manifests in "tests/features/provisioning/unknown-kind" are applied

  Scenario: A manifest the API rejects applies nothing
    Given the manifests in "tests/features/provisioning/rejected" are applied

  Scenario: A missing credential is named and no value is shown
    Given the secret "s3-credentials" holds "AWS_ACCESS_KEY_ID, NOT_SET_ANYWHERE" from "tests/features/provisioning/minio.env"
