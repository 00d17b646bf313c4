Feature: Namespace steps
  The stage namespace comes from the target; other namespaces are named.

  Scenario: The stage namespace exists
    Then the stage namespace exists

  Scenario: A namespace that does not exist
    Then the Namespace "no-such-namespace" exists

  Scenario: The stage namespace is labelled for sidecar injection
    Then the stage namespace has label "istio.io/rev" with value "data-science-smcp"

  Scenario: A label that names another revision
    Then the stage namespace has label "istio.io/rev" with value "basic"

  Scenario: A label that is absent
    Then the Namespace "private-ai-demo" has label "maistra.io/member-of" with value "istio-system"
