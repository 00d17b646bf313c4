Feature: What follows from the operators
  Scenarios that would only repeat the preflight's failure in other words.

  Scenario: A consequence that would be red
    Then the Namespace "no-such-namespace" has label "a" with value "b"

  Scenario: A consequence that would be green
    Then the stage namespace exists
