Feature: The Llama Stack distribution, whichever kind the cluster serves

  Scenario: An OGXServer is found where LlamaStackDistribution is not served
    Then the Llama Stack distribution "ogx" is ready

  Scenario: An OGXServer still initializing
    Then the Llama Stack distribution "ogx-starting" is ready
