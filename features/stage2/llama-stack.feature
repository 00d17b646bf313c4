@llama-stack
Feature: Llama Stack: the RAG server wired to the model and to Milvus
  Llama Stack, deployed by its operator from a LlamaStackDistribution, serves the stage's
  retrieval-augmented answers.

  Scenario: The Llama Stack distribution is ready
    Then the LlamaStackDistribution "llama-stack" is in phase "Ready" within 5m
    And the deployment "llama-stack" is available with 1/1 replicas ready within 5m
