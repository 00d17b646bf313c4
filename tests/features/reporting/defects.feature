Feature: Mistakes of the specification

  Scenario: A step nobody defined
    Then the stage namespace exist

  Scenario: A duration the step cannot read
    Then the ConfigMap "kube-root-ca.crt" exists within 30 parsecs

  Scenario: Writes refused on a read-only target
    Given the stage namespace is labelled "stagecheck.example.com/touched" with value "yes"
