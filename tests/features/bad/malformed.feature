Feature: A feature with a Gherkin mistake

  Scenario: Steps outside any keyword
    Then the stage namespace exists
    this line has no keyword
