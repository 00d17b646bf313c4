Feature: Evidence attached to a red step

  Scenario: A pod that never becomes ready carries its evidence
    Then all pods with labels "app=docling" are ready

  Scenario: A secret's evidence shows no value
    Then the Secret "minio-credentials" has label "app" with value "minio"
