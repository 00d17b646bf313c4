Feature: Red steps that meet secrets show none of them
  # tests/test_redaction.py runs this against tests/features/kubernetes/world.yaml and looks
  # for every canary value in the terminal, JUnit, the status page and Allure's files.

  Scenario: A Secret's diff says which key differs, not what either side holds
    Then the Secret "minio-credentials" matches:
      """
      data:
        AWS_SECRET_ACCESS_KEY: Y2FuYXJ5LWV4cGVjdGVkLTJiOTA=
      """

  Scenario: A ConfigMap's diff shows no value
    Then the ConfigMap "canary-config" matches:
      """
      data:
        settings: canary-expected-c3d4
      """

  Scenario: A pod's evidence shows no env, argument or URL credential
    Then all pods with labels "app=canary-workload" are ready

  Scenario: A custom resource's env is not shown in its diff
    Then the Widget "canary-widget" matches:
      """
      spec:
        server:
          containerSpec:
            env:
              - {name: VLLM_API_TOKEN_FILE, value: canary-crexpected-7a2b}
      """

  Scenario: A green step on the same Secret
    Then the Secret "minio-credentials" exists
