"""Results claims of the storage classes clusters have: block storage with an fsType (kubelet gives the volume the
pod's fsGroup), a node-local class (world-writable directories), and an NFS/EFS-style ReadWriteMany class that
keeps its server's ownership, so the harness's user cannot write it: the run then fails at once, as a
configuration error that says what the storage class needs, not after the workload loaded and not retried."""

from __future__ import annotations

import pytest


def test_a_shared_claim_that_ignores_fs_group_fails_at_once_saying_what_the_class_needs(kube, launch, quick_sets):
    (run,) = launch(sets=[*quick_sets, "results.access_mode=ReadWriteMany", "results.storage_class=nfs-client",
                          "job.retries=3"]).runs
    assert run.status == "failed" and run.exit_code == 3, run.message
    claim = kube.claims / "bench" / f"{run.run_id}-results"       # mounted at /results in a real pod
    assert run.message.startswith(f"harness exit 3 (BAD_SPEC): mlrepro-harness: error: {claim} is not writable by "
                                  "uid ")
    assert "so the volume did not take the pod's fsGroup" in run.message
    assert ("an NFS/EFS-style ReadWriteMany storage class must give volumes that group (an EFS access point with its "
            "gid, an NFS export group-writable by it) or mode 0777; or use results.access_mode: ReadWriteOnce"
            ) in run.message
    (job,) = kube.objects("jobs")
    assert job["status"]["failed"] == 1           # the podFailurePolicy's FailJob on exit 3: no retry
    assert not any(claim.iterdir())               # nothing was written


@pytest.mark.parametrize("sets", [["results.storage_class=local-path"], []], ids=["local-path", "block-rwo"])
def test_claims_the_pod_may_write_run(kube, launch, quick_sets, sets):
    (run,) = launch(sets=[*quick_sets, *sets]).runs
    assert run.status == "succeeded", run.message
