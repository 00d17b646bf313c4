@docling
Feature: Docling: the stage's documents are converted for ingestion
  Documents reach the vector store through Docling, which turns HTML, Office files and PDFs
  into Markdown. Its server must be deployed, healthy, and able to convert a document.

  @smoke
  Scenario: Docling is deployed and ready
    Then the Docling server "docling" is ready within 5m
    And the deployment "docling-deployment" is available within 5m

  Scenario: Docling answers its health check
    Then Docling answers its health check

  Scenario: Docling converts a small document to Markdown
    Then Docling converts "features/stage2/documents/zorbia-brief.html" to Markdown containing "Quandel"
