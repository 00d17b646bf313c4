Feature: A feature file that is not Gherkin

  Scenario: Steps outside any keyword
    Then the stage namespace exists
    this line has no keyword
