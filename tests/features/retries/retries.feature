Feature: Retries
  Reds that go away on a later attempt, and reds that would not.

  @flaky-by-nature
  Scenario: A model's answer that is wrong once
    Then the model answers wrong on the first attempt of "answer-once"

  @flaky-by-nature
  Scenario: A model's answer that is always wrong
    Then the model answers wrong every time of "answer-always"

  @flaky-by-nature
  Scenario: A state that is final, in a scenario tagged flaky by nature
    Given the attempts are counted in "final-state"
    Then the Widget "failing-widget" is in phase "Ready"

  Scenario: An untagged answer that is wrong once
    Then the model answers wrong on the first attempt of "untagged-answer"

  Scenario: A model server that does not answer once
    Then the model server does not answer on the first attempt of "not-answering"
