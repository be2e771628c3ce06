"""Can the harness write its results, before it spends a minute on anything? (A configuration error, exit 3.)

On Kubernetes the results volume is a PersistentVolumeClaim and the harness runs as a non-root user (Pod Security
"restricted"); the pod's ``fsGroup`` is what makes the volume writable: kubelet changes the volume's group to it
(and sets the setgid bit) only for volumes that support ownership management — block volumes with an
``fsType`` (ReadWriteOnce), under a CSI driver's default ``fsGroupPolicy: ReadWriteOnceWithFSType``, or drivers
with ``fsGroupPolicy: File``. An NFS/EFS-style ReadWriteMany volume keeps the owner and mode its server gives it
(often root, 0755), and the run could only fail at its first write, after the workload was loaded and LoadGen
calibrated. Sources: kubernetes.io "Configure a Security Context for a Pod or Container" (fsGroup,
fsGroupChangePolicy) and "CSI Driver fsGroup Policy"; kubernetes-csi docs "Support for fsGroup".
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from mlrepro.harness.sysinfo.runtime import ENV_TARGET

NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
PROBE_PREFIX = ".mlrepro-write-check-"
GUIDE = "docs/kubernetes.md, \"Storage classes\""


class ResultsNotWritable(Exception):
    """The results directory cannot be written by this process: a configuration error (retrying cannot help)."""


def check_writable(results_dir: Path, run_dir: Path) -> None:
    """Create ``run_dir`` (under ``results_dir``) and a file in it, and remove the file. Raises
    ResultsNotWritable with one line saying who may write there and, in a pod (``MLREPRO_TARGET=kubernetes``),
    what the storage class needs; other OSErrors (a full disk) are left to the caller."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        raise ResultsNotWritable(_explain(results_dir, run_dir, exc)) from None


def _explain(results_dir: Path, run_dir: Path, exc: OSError) -> str:
    where = run_dir if run_dir.is_dir() else results_dir
    groups = sorted({os.getgid(), *os.getgroups()})
    who = f"uid {os.getuid()} (groups {','.join(map(str, groups))})"
    try:
        st = where.stat()
        owner = f"owned by {st.st_uid}:{st.st_gid} with mode {st.st_mode & 0o7777:04o}"
    except OSError:
        owner = "not readable"
    on_kubernetes = os.environ.get(ENV_TARGET) == "kubernetes"
    if exc.errno == errno.EROFS:
        return (f"{where} is on a read-only filesystem: the results volume must be mounted read-write"
                + (f" (see {GUIDE})" if on_kubernetes else ""))
    if not on_kubernetes:
        return f"{where} is not writable by {who}: it is {owner}; the results directory must be writable by this user"
    return (f"{where} is not writable by {who}: it is {owner}, so the volume did not take the pod's fsGroup. "
            "Kubernetes applies fsGroup only to volumes with an fsType (ReadWriteOnce block storage) or a CSI driver "
            "with fsGroupPolicy File; an NFS/EFS-style ReadWriteMany storage class must give volumes that group "
            "(an EFS access point with its gid, an NFS export group-writable by it) or mode 0777; or use "
            f"results.access_mode: ReadWriteOnce on a block storage class (see {GUIDE})")
