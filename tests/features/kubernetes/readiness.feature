Feature: Ready, by each kind's own rule

  Scenario: A claim bound to its volume
    Then the PersistentVolumeClaim "milvus-data" is bound within 30s

  Scenario: A claim no volume can satisfy
    Then the pvc "minio-data" is bound

  Scenario: A route a router admitted
    Then the Route "admitted-route" is admitted

  Scenario: A route no router admitted names the router and its reason
    Then the Route "claimed-route" is ready

  Scenario: A custom resource is ready by its Ready condition
    Then the Widget "ready-widget" is ready

  Scenario: A custom resource with no status yet is not ready
    Then the Widget "new-widget" is ready within 1s

  Scenario: A custom resource with neither a Ready condition nor a phase
    Then the Widget "synced-widget" is ready

  Scenario: A ConfigMap is ready once it exists
    Then the ConfigMap "canary-config" is ready

  Scenario: A sentence for another kind
    Then the ConfigMap "canary-config" is bound

  Scenario: A Secret holds the keys the stage needs
    Then the Secret "minio-credentials" has keys "AWS_SECRET_ACCESS_KEY"

  Scenario: A Secret without a key names the keys it has, no value
    Then the Secret "minio-credentials" has keys "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"

  Scenario: An operator at a version or later
    Then the operator "rhods-operator" is installed at version "2.9" or later

  Scenario: An operator older than the stage needs
    Then the operator "rhods-operator" is installed at version "2.16.1" or later

  Scenario: An operator still installing
    Then the operator "servicemeshoperator" is installed

  Scenario: The cluster's Kubernetes at a version or later
    Then the Kubernetes version is "1.30" or later

  Scenario: A Kubernetes older than the stage needs
    Then the Kubernetes version is "v2.0" or later

  Scenario: A Deployment with a capital D
    Then the Deployment "web" is available
