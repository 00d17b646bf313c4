@milvus
Feature: Milvus, the vector database behind retrieval
  Retrieval-augmented answers in stage 2 depend on one healthy Milvus standalone in the
  stage namespace that stores and finds vectors.

  @smoke
  Scenario: Milvus standalone is deployed and available
    Given the stage namespace exists
    Then the deployment "milvus-standalone" is available with 1/1 replicas ready within 2m
    And all pods with labels "app=milvus" are ready

  Scenario: Milvus stores and finds vectors
    Then Milvus answers with its server version
    And Milvus stores and finds a vector in a scratch collection
