@pipelines
Feature: Pipelines: Kubeflow Pipelines through a DataSciencePipelinesApplication
  Document ingestion runs as pipelines, so the stage's DSPA and its components must be ready.

  @smoke
  Scenario: The pipelines application and its components are ready
    Then the DataSciencePipelinesApplication "dspa" has condition "Ready" with status "True" within 5m
    And the DataSciencePipelinesApplication "dspa" matches:
      """
      status:
        conditions:
          - {type: DatabaseAvailable, status: "True"}
          - {type: ObjectStoreAvailable, status: "True"}
          - {type: APIServerReady, status: "True"}
          - {type: PersistenceAgentReady, status: "True"}
          - {type: ScheduledWorkflowReady, status: "True"}
      """
    And all pods with labels "component=data-science-pipelines" are ready within 5m

  Scenario: The artifact bucket answers with the DSPA's credentials
    Then the artifact bucket of the DSPA "dspa" is reachable with its credentials

  Scenario: The pipelines API answers through its route
    Then the pipelines API of the DSPA "dspa" is healthy through its route
