"""Kubernetes target: runs as Jobs on a cluster, through the official ``kubernetes`` client.

    config    which cluster, context and namespace (kubectl's rules; in-cluster)
    api       every API call the runner makes (as JSON); API_CALLS is what manifests/rbac.yaml grants
    images    the image a cluster pulls (the recorded push digest, or build + push)
    watch     one watch per resource kind, resumed and relisted; events routed to each run
    diagnose  what a Job and its pods say (pure functions);  tracker: one run's state from its events
    admission who refused a request or a Job's pod (RBAC, ResourceQuota, LimitRange, Pod Security, a webhook)
    collect   results out of the claim through a helper pod (exec + tar, safe extraction, checksums) on the
              run's node; execstream: an exec's output one WebSocket message at a time
    runner    KubernetesRunner: the runner contract (mlrepro.runners.base) on a cluster

Import the submodule you need (the ``kubernetes`` client is imported only inside the functions that use it).
"""
