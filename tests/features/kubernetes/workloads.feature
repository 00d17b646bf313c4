Feature: Deployments and pods, made running by kwok

  Scenario: A deployment becomes available
    Then the deployment "web" is available within 60s

  Scenario: A deployment with the expected replica counts
    Then the deployment "web" is available with 2/2 replicas ready within 60s

  Scenario: A deployment with other replica counts
    Given the deployment "web" is available within 60s
    Then the deployment "web" is available with 3/3 replicas ready

  Scenario: A deployment whose pods cannot be scheduled
    Then the deployment "unschedulable" is available within 3s

  Scenario: All pods of a workload are ready
    Then all pods with labels "app=web" are ready within 60s

  Scenario: No pod matches the selector
    Then all pods with labels "app=nothing" are ready

  Scenario: A pod that is not ready
    Then all pods with labels "app=not-ready" are ready

  Scenario: A crash-looping pod stops the wait at once
    Then all pods with labels "app=crashloop" are ready within 2m

  Scenario: Every pod has the injected sidecar
    Then every pod with labels "app=meshed" has a container named "istio-proxy" within 60s

  Scenario: A pod without the sidecar
    Given all pods with labels "app=llama-stack" are ready within 60s
    Then every pod with labels "app=llama-stack" has a container named "istio-proxy"
