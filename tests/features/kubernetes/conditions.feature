Feature: Conditions and phases

  Scenario: A condition that holds
    Then the Widget "ready-widget" has condition "Ready" with status "True"

  Scenario: A condition with another status shows its reason and message
    Then the Widget "failing-widget" has condition "Ready" with status "True"

  Scenario: A condition the object does not report
    Then the Widget "ready-widget" has condition "Degraded" with status "False"

  Scenario: A condition that failed stops the wait at once
    Then the Widget "failing-widget" has condition "APIServerReady" with status "True" within 2m

  Scenario: A phase that holds
    Then the Widget "ready-widget" is in phase "Ready"

  Scenario: A failed phase stops the wait at once
    Then the Widget "failing-widget" is in phase "Ready" within 2m
