"""Triage cost per mention against the sentiment `classify` call alone, on the same texts, in one process.

Both run the way the ingest handler runs them: `classify` once per SQS batch of 10 texts (with the brand's
playbook crisis terms, as `pipeline.classify_all` does), and triage (`chalicelib.triage.rules.triage`:
topics, crisis playbook, question, strength, reach, thread, urgency, reply rule) for each mention of the
batch. Rounds alternate which of the two goes first, and the figure is the median over rounds, so drift in
the shared machine's load falls on both. Target: triage adds less than 50% to classify.

The queue write (one DynamoDB transaction for a mention that needs a reply) is I/O, not in this figure;
docs/triage.md gives its capacity cost.

Texts: ../shared/data/sentiment/{en,he}_dev.jsonl when present, else klaxon/demo_data/texts.json.

Usage: python -m bench.triage [--rounds 7] [--data DIR]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded, like a Lambda's vCPU share

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"
DEMO = REPO / "klaxon" / "demo_data" / "texts.json"
BRAND = "acme-telecom"
BATCH = 10
TARGET = 1.5


def load_texts(data: Path) -> tuple[list[str], str]:
    files = [data / "en_dev.jsonl", data / "he_dev.jsonl"]
    if all(f.exists() for f in files):
        lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = [json.loads(line)["text"] for line in lines]
        return texts, f"{len(texts)} texts from {data} (en_dev + he_dev)"
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    texts = [
        t.replace("{brand}", "@AcmeTelecom")
        for lang, labels in demo.items()
        if not lang.startswith("_")
        for group in labels.values()
        for t in group
    ]
    return texts, f"{len(texts)} demo texts from {DEMO.relative_to(REPO)} (../shared data not found)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    from chalicelib import sentiment
    from chalicelib.ingest.models import Author, Mention
    from chalicelib.playbooks.loader import crisis_terms_for, default_playbooks
    from chalicelib.triage.rules import triage
    from chalicelib.triage.service import rules_for

    texts, source = load_texts(args.data)
    rng = random.Random(11)
    playbooks = default_playbooks()
    terms = crisis_terms_for(BRAND, playbooks)
    rules = rules_for(BRAND, playbooks)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    labels = sentiment.classify(texts, crisis_terms=terms)  # warm the model; the labels triage reads
    mentions = [
        Mention(
            platform="x",
            platform_id=str(i),
            text=text[:25_000],
            created_at=base + timedelta(seconds=i),
            author=Author(handle=f"u{i}", followers=int(10 ** rng.uniform(0, 6.5)) if rng.random() < 0.8 else None),
            reply_to=str(rng.randrange(50)) if rng.random() < 0.3 else None,
            brands=(BRAND,),
            language=sentiment.detect_language(text),
            sentiment=label,
        )
        for i, (text, label) in enumerate(zip(texts, labels, strict=True))
    ]
    batches = [range(s, min(s + BATCH, len(texts))) for s in range(0, len(texts), BATCH)]

    def run_classify() -> float:
        start = time.perf_counter()
        for idx in batches:
            sentiment.classify([texts[i] for i in idx], crisis_terms=terms)
        return time.perf_counter() - start

    def run_triage() -> float:
        start = time.perf_counter()
        for idx in batches:
            for i in idx:
                triage(mentions[i], rules, thread_replies=i % 7)
        return time.perf_counter() - start

    run_triage()  # warm caches (compiled patterns)
    classify_s: list[float] = []
    triage_s: list[float] = []
    for r in range(args.rounds):
        if r % 2:
            triage_s.append(run_triage())
            classify_s.append(run_classify())
        else:
            classify_s.append(run_classify())
            triage_s.append(run_triage())
    n = len(texts)
    c = statistics.median(classify_s) / n * 1e6
    t = statistics.median(triage_s) / n * 1e6
    ratio = t / c
    queued = sum(1 for m in mentions if triage(m, rules).needs_reply)
    print(f"texts: {source}; batches of {BATCH}; {args.rounds} interleaved rounds, medians")
    print(f"classify (sentiment alone): {c:8.1f} us per mention")
    print(f"triage (rules.triage):      {t:8.1f} us per mention")
    print(f"triage / classify = {ratio:.2f}  (triage adds {ratio:.0%} to classify; target < 50%: "
          f"{'met' if ratio < TARGET - 1 else 'NOT met'})")
    print(f"mentions needing a reply (queued): {queued}/{n} ({queued / n:.0%})")
    try:
        load = os.getloadavg()[0]
        print(f"load average: {load:.1f}")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
