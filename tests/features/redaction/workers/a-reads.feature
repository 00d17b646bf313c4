Feature: One worker reads a Secret

  Scenario: The worker's Secret is read
    Then the Secret "worker-canary" exists
