@milvus
Feature: Milvus, the vector database behind retrieval
  Retrieval-augmented answers in stage 2 depend on one healthy Milvus standalone
  in the stage namespace.

  Scenario: Milvus standalone is deployed and available
    Given the stage namespace exists
    Then the deployment "milvus-standalone" is available with 1/1 replicas ready within 2m
    And all pods with labels "app=milvus" are ready
