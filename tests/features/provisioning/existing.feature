Feature: What was there before the run is as it was after it
  # tests/test_existing_objects.py creates ConfigMap gitops-settings (mode: fast) as a GitOps
  # controller would, and Secret existing-credentials, before this feature runs.

  Scenario: A field another manager owns is not taken over
    Given the manifests in "tests/features/provisioning/owned" are applied

  Scenario: An object that existed is given back as it was
    Given the manifests in "tests/features/provisioning/extended" are applied
    Then the ConfigMap "gitops-settings" matches:
      """
      data: {mode: fast, probe: "on"}
      """

  Scenario: A Secret that existed with other values is not overwritten
    Given the secret "existing-credentials" holds "AWS_ACCESS_KEY_ID" from "tests/features/provisioning/minio.env"

  Scenario: A Secret that existed with the same values is used as it is
    Given the secret "existing-same-credentials" holds "AWS_ACCESS_KEY_ID" from "tests/features/provisioning/minio.env"
    Then the Secret "existing-same-credentials" exists
