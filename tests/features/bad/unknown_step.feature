Feature: A feature with a step nobody defined

  Scenario: A misspelled step
    Then the stage namespace exist
