"""The step vocabulary: thin adapters from Gherkin sentences to the engine.

pytest loads every module here to match sentences, whatever the features say. So a step
reaching a service (the data plane, S3, the pipelines API, a probe pod, the provisioner)
imports its engine module in its own body, where it is first used: a run of Kubernetes-level
features loads none of them (tests/test_startup.py keeps it so).
"""
