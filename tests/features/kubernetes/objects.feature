Feature: Objects of any kind, found through API discovery

  Scenario: A custom resource named by its kind
    Then the Widget "ready-widget" exists

  Scenario: A custom resource named by kind and group
    Then the Widget.stagecheck.example.com "ready-widget" exists

  Scenario: A kind spelled the way kubectl spells it
    Then the wdg "ready-widget" exists

  Scenario: A kind the cluster does not serve
    Then the Wigdet "ready-widget" exists

  Scenario: A kind in the wrong API group
    Then the Widget.stagecheck.example.org "ready-widget" exists

  Scenario: An object that does not exist
    Then the ConfigMap "no-such-config" exists

  Scenario: An object in a namespace that does not exist
    Then the ConfigMap "settings" in namespace "no-such-namespace" exists

  Scenario: An object in another namespace
    Then the ConfigMap "kube-root-ca.crt" in namespace "kube-system" exists

  Scenario: An object that appears while the step waits
    Then the ConfigMap "late-config" exists within 60s

  Scenario: An object that never appears
    Then the ConfigMap "never-config" exists within 2s

  Scenario: A duration the step cannot read
    Then the ConfigMap "kube-root-ca.crt" exists within 30 parsecs
