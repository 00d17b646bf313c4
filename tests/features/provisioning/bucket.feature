Feature: The artifact bucket deploy.sh creates, provisioned by a step

  Scenario: A bucket is ensured for the length of the scenario
    Given the S3 bucket "scratch-artifacts" exists, with the credentials in secret "dspa-minio-credentials"
