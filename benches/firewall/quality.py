"""The local firewall classifier against the project's own labelled set: detection rate on
``injections.txt`` (prompt-injection and jailbreak attempts, one a line) and false-positive
rate on ``ordinary.txt`` (ordinary prompts, some about security itself). Both were written
for this project; the classifier never trained on them (scripts/train_injection_head.py).

    .venv/bin/python benches/firewall/quality.py [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from floopy.pipeline.firewall.local import LocalClassifier
from floopy.vectors.minilm import LocalEmbedder

HERE = Path(__file__).parent
RESULTS = HERE.parent / "results" / "firewall-quality.json"


def lines(name: str) -> list[str]:
    return [line.strip() for line in (HERE / name).read_text().splitlines() if line.strip()]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    embedder = LocalEmbedder()
    classifier = LocalClassifier(embedder, threshold=args.threshold)
    report: dict[str, object] = {"threshold": args.threshold}
    for name, label in (("injections.txt", "unsafe"), ("ordinary.txt", "safe")):
        texts = lines(name)
        verdicts = await classifier.classify(texts, None)
        wrong = [t for t, v in zip(texts, verdicts, strict=True) if v.outcome != label]
        flagged = sum(v.outcome == "unsafe" for v in verdicts)
        report[name] = {"n": len(texts), "flagged": flagged, "wrong": wrong}
        print(f"{name}: {flagged}/{len(texts)} flagged")
        for text in wrong:
            print(f"   missed as {label}: {text[:100]}")
    await embedder.close()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
