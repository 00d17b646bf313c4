Feature: Another worker prints the same value without reading it

  Scenario: A value written into the feature is printed by its red step
    Then the Namespace "private-ai-demo" has label "team" with value "canary-worker-2f7a" within 3s
