Feature: A run interrupted while it waits

  Scenario: Objects applied before the interruption are removed
    Given the manifests in "tests/features/provisioning/slow" are applied
    Then the deployment "waits-for-gpu" is available within 5m
