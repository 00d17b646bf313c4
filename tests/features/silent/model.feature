Feature: A model server that accepts connections and never answers

  Scenario: The model server lists the stage model
    Then the model server lists the stage model

  Scenario: The stage model answers
    Then the stage model answers the question "What is 2 + 2?"

  Scenario: The stage model answers again
    Then the stage model answers the question "And 3 + 3?"

  Scenario: The model server lists the stage model again
    Then the model server lists the stage model
