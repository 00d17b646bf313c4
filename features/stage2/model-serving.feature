@model-serving
Feature: Model serving: the stage-1 model is served by vLLM behind KServe
  Stage 2 builds on the model stage 1 serves: the InferenceService must be ready with its
  model loaded, and its predictor running.

  @smoke
  Scenario: The InferenceService is ready with its model loaded
    Then the InferenceService "mistral-24b-quantized" has condition "Ready" with status "True" within 5m
    And the InferenceService "mistral-24b-quantized" matches:
      """
      status:
        modelStatus:
          states:
            activeModelState: Loaded
      """
    And all pods with labels "serving.kserve.io/inferenceservice=mistral-24b-quantized" are ready within 5m

  Scenario: The model endpoint serves the model and answers
    Then the model server lists the stage model
    And the stage model answers the question "Say hello in one word."
