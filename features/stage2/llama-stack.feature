@llama-stack
Feature: Llama Stack: the RAG server wired to the model and to Milvus
  Llama Stack, deployed by its operator from a LlamaStackDistribution, serves the stage's
  retrieval-augmented answers: it must reach the model through the mesh and store its
  vectors in Milvus.

  @smoke
  Scenario: The Llama Stack distribution is ready
    Then the Llama Stack distribution "llama-stack" is ready within 5m
    And the deployment "llama-stack" is available with 1/1 replicas ready within 5m

  Scenario: Llama Stack is healthy and has the stage model registered
    Then Llama Stack is healthy
    And Llama Stack has the stage model registered

  Scenario: A question is answered from ingested documents
    Given a vector store with the documents:
      | name       | text                                                                       |
      | zorbia.txt | The capital of Zorbia is Quandel. Zorbia exports blue cheese and violins.  |
      | tides.txt  | Tides are caused mainly by the gravitational pull of the Moon on the oceans. |
    When the question "What is the capital of Zorbia?" is asked
    Then the answer is retrieved from "zorbia.txt"
    And the answer contains "Quandel"

  Scenario: A question is answered from the documents of a folder
    Given a vector store with the documents in "features/stage2/documents"
    When the question "What is the capital of Zorbia?" is asked
    Then the answer is retrieved from "zorbia.md"
    And the answer contains "Quandel"
