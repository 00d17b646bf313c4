Feature: The stage's custom resources are checked by the API server as a real cluster does

  Scenario: A DoclingServe without an engine is refused with the API server's message
    Given the manifests in "tests/features/crds/docling-without-engine" are applied
