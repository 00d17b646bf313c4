Feature: Partial-object matching

  Scenario: Only the written fields must match, conditions in any order
    Then the Widget "ready-widget" matches:
      """
      spec:
        size: 3
      status:
        conditions:
          - type: Ready
            status: "True"
      """

  Scenario: A field with another value
    Then the Widget "ready-widget" matches:
      """
      spec:
        size: 5
      """

  Scenario: A condition list without the expected item
    Then the Widget "failing-widget" matches:
      """
      status:
        conditions:
          - type: Ready
            status: "True"
      """

  Scenario: A partial object that is not valid YAML
    Then the Widget "ready-widget" matches:
      """
      spec: [size: 3
      """
