Feature: The stage's operators and custom resources
  The preflight: when it is red, nothing after it is worth checking.

  @smoke
  Scenario: The stage namespace is there
    Then the stage namespace exists

  @smoke
  Scenario: An operator's object that is missing
    Then the Namespace "no-such-namespace" exists
