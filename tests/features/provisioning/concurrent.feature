Feature: A second run of a provisioning feature

  Scenario: The slow set is applied by a second run
    Given the manifests in "tests/features/provisioning/slow" are applied
    Then the configmap "interrupted-settings" exists
