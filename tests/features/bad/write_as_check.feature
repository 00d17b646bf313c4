Feature: A step that changes the cluster, written as a check

  Scenario: Applying under Then
    Then the manifests in "tests/features/provisioning/slow" are applied
