@milvus
Feature: Vector store widgets
  Retrieval needs its widgets ready.

  Scenario: The ready widget reports Ready
    Given the run has seen milvus at version "2.4.1"
    Then the Widget "ready-widget" has condition "Ready" with status "True"

  Scenario Outline: A widget is in its phase
    Then the Widget "<name>" is in phase "<phase>"

    Examples:
      | name           | phase |
      | ready-widget   | Ready |
      | failing-widget | Ready |
      | ready-widget   | Ready |
