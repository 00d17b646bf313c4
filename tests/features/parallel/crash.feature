Feature: A worker that dies
  Under -n, the scenario it was running is reported broken; the others are not lost.

  Scenario: A scenario whose worker dies
    Then the process running this scenario dies

  Scenario: A scenario that passes
    Then the stage namespace exists
