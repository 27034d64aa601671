"""Nearest-neighbour search for large workspaces: exact cosine against the IVF index
(loket.knowledge.retrieval, ``EXACT_UP_TO`` / ``PROBES``). Standalone: no database.

    python bench/knowledge_ann.py                 # n = 50,000 and 200,000
    python bench/knowledge_ann.py --sizes 50000

Vectors: real embeddings (``loket.knowledge.embeddings``) of the waddenveer articles' sentences
and of recombinations of them (two or three sentences of one article, or of two articles), ~4,000
texts; the n passages are drawn around those: a text's embedding mixed with one of its 20 nearest
texts' (weight 0..0.5) plus Gaussian noise (cosine with the mixture ~0.75 to 0.9), L2-normalised —
clusters with the real embeddings' shape, not uniform noise (on which any index does badly and
which no knowledge base looks like). 10% of the passages are internal, 10% resolved
conversations' (both hidden from the default search). Queries: the 211 real customer questions
of ``bench/data/knowledge_questions.json``, embedded.

Figures per n (``knowledge.ann.<n>.…``):

* ``build_s``: building the index (k-means on a sample, every vector assigned, rows reordered);
  ``lists``: k; ``refresh_s``: bringing it up to date after one article changed (10 passages
  out, 10 in; the centroids kept, the two small queries of ``_refresh_matrix`` not included);
* ``matrix_mb`` / ``index_extra_mb``: the matrix, and what the index adds (centroids, offsets);
  ``build_peak_mb``: the peak of numpy allocations while building (tracemalloc);
* ``exact_p50_ms`` / ``exact_p99_ms`` and ``ivf_p50_ms`` / ``ivf_p99_ms``: the CANDIDATES
  nearest of one question, public passages only (the question's embedding not included);
* ``recall_at_50`` (%): the share of exact search's top 50 that the index finds, at ``PROBES``
  (``.probes_<p>.recall_at_50``: other numbers of probes); ``recall_at_50_all``: with internal
  passages and conversations included (the composer's search).

Target: recall@50 ≥ 0.95 at ``PROBES``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import _common as c

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = Path(__file__).resolve().parent / "data" / "knowledge_questions.json"
RECALL_TARGET = 0.95
SIZES = (50_000, 200_000)
PROBE_SWEEP = (8, 12, 16, 24, 32)
REPEAT = 3  # each question is asked this many times for the latencies


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loket.settings")
    os.environ.setdefault("SECRET_KEY", "bench-knowledge-ann")
    os.environ.setdefault("LOKET_VAR_DIR", tempfile.mkdtemp(prefix="loket-ann-"))
    os.environ.setdefault("LOKET_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def texts() -> list[str]:
    """The articles' sentences and recombinations of them (seeded)."""
    from loket.knowledge import examples

    rng = np.random.default_rng(1)
    articles = []
    for article in examples.load("waddenveer")["articles"]:
        for translation in article["translations"].values():
            body = translation["title"] + ". " + translation["body"]
            found = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", body)]
            articles.append([s for s in found if len(s) > 15])
    sentences = [s for article in articles for s in article]
    mixed = []
    for _ in range(3000):
        one = articles[rng.integers(len(articles))]
        if rng.random() < 0.7:  # within one article
            picks = rng.choice(len(one), size=min(len(one), rng.integers(2, 4)), replace=False)
            mixed.append(" ".join(one[i] for i in sorted(picks)))
        else:  # across two
            other = articles[rng.integers(len(articles))]
            mixed.append(one[rng.integers(len(one))] + " " + other[rng.integers(len(other))])
    return sentences + mixed


def passages(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n vectors drawn around the real embeddings (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    similar = base @ base.T
    neighbours = np.argsort(-similar, axis=1)[:, 1:21]
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 20_000):
        m = min(20_000, n - start)
        first = rng.integers(len(base), size=m)
        second = neighbours[first, rng.integers(20, size=m)]
        weight = rng.uniform(0, 0.5, size=(m, 1)).astype(np.float32)
        sigma = rng.uniform(0.015, 0.035, size=(m, 1)).astype(np.float32)
        noise = rng.standard_normal((m, base.shape[1]), dtype=np.float32) * sigma
        block = (1 - weight) * base[first] + weight * base[second] + noise
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies(run, questions: np.ndarray) -> list[float]:
    times = []
    for _ in range(REPEAT):
        for question in questions:
            started = time.perf_counter()
            run(question)
            times.append(time.perf_counter() - started)
    return times


def recall(exact: list[dict], found: list[dict]) -> float:
    return float(
        np.mean([len(set(e) & set(f)) / len(e) for e, f in zip(exact, found, strict=True)])
    )


def measure(n: int, base: np.ndarray, questions: np.ndarray) -> bool:
    from loket.knowledge import retrieval

    prefix = f"knowledge.ann.{n}"
    vectors = passages(base, n, seed=n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    kind = np.random.default_rng(n + 1).random(n)
    meta = {
        int(pk): (int(pk), int(pk), "en", bool(kind[i] < 0.1), int(pk) if kind[i] > 0.9 else None)
        for i, pk in enumerate(ids)
    }
    threshold = retrieval.EXACT_UP_TO
    retrieval.EXACT_UP_TO = n + 1
    exact = retrieval._matrix(ids, vectors, meta)
    retrieval.EXACT_UP_TO = threshold
    assert exact.index is None and n > threshold
    tracemalloc.start()
    started = time.perf_counter()
    ivf = retrieval._matrix(ids, vectors, meta)
    build = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ivf.index is not None
    c.figure(f"{prefix}.build_s", build, "s")
    c.figure(f"{prefix}.lists", len(ivf.index.centroids), "lists")
    c.figure(f"{prefix}.matrix_mb", ivf.vectors.nbytes / 2**20, "MB")
    extra = ivf.index.centroids.nbytes + ivf.index.offsets.nbytes
    c.figure(f"{prefix}.index_extra_mb", extra / 2**20, "MB")
    c.figure(f"{prefix}.build_peak_mb", peak / 2**20, "MB")
    # An article re-indexed (10 passages deleted, 10 made): the in-memory part of the refresh
    # (``_refresh_matrix`` without its two queries), the centroids kept.
    started = time.perf_counter()
    removed = np.flatnonzero(np.isin(ivf.ids, ids[:10]))
    new_ids = np.arange(n + 1, n + 11, dtype=np.int64)
    new_meta = {int(pk): meta[int(old)] for pk, old in zip(new_ids, ids[:10], strict=True)}
    patched = retrieval._patched(ivf, removed, new_ids, vectors[:10].copy(), new_meta)
    c.figure(f"{prefix}.refresh_s", time.perf_counter() - started, "s")
    assert patched.index.centroids is ivf.index.centroids and len(patched.ids) == n
    del vectors, patched

    def exact_search(question, everything=False):
        return retrieval._nearest(exact, question, everything, everything)

    def ivf_search(question, everything=False):
        return retrieval._nearest(ivf, question, everything, everything)

    for name, run in (("exact", exact_search), ("ivf", ivf_search)):
        times = latencies(run, questions)
        c.figure(f"{prefix}.{name}_p50_ms", c.percentile(times, 50) * 1000, "ms")
        c.figure(f"{prefix}.{name}_p99_ms", c.percentile(times, 99) * 1000, "ms")
    truth = [exact_search(q) for q in questions]
    probes = retrieval.PROBES
    for p in PROBE_SWEEP:
        retrieval.PROBES = p
        c.figure(
            f"{prefix}.probes_{p}.recall_at_50",
            100 * recall(truth, [ivf_search(q) for q in questions]),
            "%",
        )
    retrieval.PROBES = probes
    found = recall(truth, [ivf_search(q) for q in questions])
    c.figure(f"{prefix}.recall_at_50", 100 * found, "%")
    everything = recall(
        [exact_search(q, True) for q in questions], [ivf_search(q, True) for q in questions]
    )
    c.figure(f"{prefix}.recall_at_50_all", 100 * everything, "%")
    return c.verdict(
        "target",
        found >= RECALL_TARGET and everything >= RECALL_TARGET,
        f"{prefix}.recall_at_50",
        f"{found:.3f} / {everything:.3f} (all) >= {RECALL_TARGET} at PROBES={probes}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--no-machine", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    setup_django()
    from loket.knowledge import embeddings, retrieval

    started = time.perf_counter()
    corpus = texts()
    base = embeddings.embed(corpus)
    questions = embeddings.embed(
        [q["question"] for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    )
    c.note(
        f"{len(corpus)} real texts and {len(questions)} questions embedded in "
        f"{time.perf_counter() - started:.1f} s; EXACT_UP_TO={retrieval.EXACT_UP_TO}, "
        f"PROBES={retrieval.PROBES}, CANDIDATES={retrieval.CANDIDATES}"
    )
    ok = True
    for n in (int(size) for size in args.sizes.split(",")):
        ok = measure(n, base, questions) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
