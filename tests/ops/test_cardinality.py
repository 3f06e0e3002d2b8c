"""Label cardinality stays bounded: 10,000 distinct flags evaluated give at most the label budget
plus the two aggregate series per reason, and no evaluation is lost from the totals."""

from __future__ import annotations

import asyncio
import random
import string

from tests.support.flags import flag_model
from tests.support.ops import scrape
from tests.support.servers import connected, running_app, server_settings
from vexil.observability.stats import BULK, OTHER_FLAGS, EvaluationCounts
from vexil.store.memory import MemoryStore
from vexil.v1 import evaluation_pb2

FLAGS = 10_000


async def test_ten_thousand_flags_evaluated_keep_labels_bounded() -> None:
    store = MemoryStore()
    for n in range(FLAGS):
        await store.create_flag(flag_model(f"flag-{n:05d}", default="on"), actor="test")
    settings = server_settings(cache_maxsize=FLAGS)
    async with running_app(settings, store) as app, connected(app) as c:
        limit = app.metrics.evaluations.limit
        keys = [f"flag-{n:05d}" for n in range(FLAGS)]
        for start in range(0, FLAGS, 500):
            await asyncio.gather(
                *(
                    c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=k))
                    for k in keys[start : start + 500]
                )
            )
        # And keys that do not exist: never a label of their own, however many.
        await asyncio.gather(
            *(
                c.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=f"missing-{n}"))
                for n in range(300)
            )
        )
        s = await scrape(app)

    flags = s.label_values("vexil_evaluations_total", "flag")
    assert len(flags) <= limit + 2, f"{len(flags)} flag label values"
    assert OTHER_FLAGS in flags
    assert not any(f.startswith("missing-") for f in flags)
    assert s.sum("vexil_evaluations_total") == FLAGS + 300
    assert (
        s.sum("vexil_evaluations_total", lambda labels: labels["flag"] == OTHER_FLAGS) == FLAGS - limit + 300
    )
    assert len(s.series("vexil_evaluations_total")) <= (limit + 2) * 5  # five reasons at most
    assert s.sum("vexil_evaluation_flag_labels") == limit
    # The whole exposition stays small: 10,000 flags do not mean 10,000 series anywhere.
    assert len(s.samples) < 1000


def test_garbage_keys_and_bulk_answers_never_become_labels() -> None:
    counts = EvaluationCounts(limit=3)
    rng = random.Random(7)
    for _ in range(10_000):
        junk = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 300)))
        counts.record(junk, "ERROR", found=rng.random() < 0.5)
    counts.record("real-1", "STATIC")
    counts.record_bulk("STATIC")
    families = {f.name: f for f in counts.families()}
    labels = {s.labels["flag"] for s in families["vexil_evaluations"].samples}
    # Valid-looking keys from the junk may take the three slots; nothing beyond them.
    assert len(labels - {OTHER_FLAGS, BULK}) <= 3
    assert all(len(label) <= 128 for label in labels)
    assert sum(s.value for s in families["vexil_evaluations"].samples) == 10_002


def test_first_flags_get_labels_and_keep_them() -> None:
    counts = EvaluationCounts(limit=2)
    for key in ("a", "b", "c", "a", "c"):
        counts.record(key, "STATIC")
    samples = {s.labels["flag"]: s.value for s in next(iter(counts.families())).samples}
    assert samples == {"a": 2, "b": 1, OTHER_FLAGS: 2}
