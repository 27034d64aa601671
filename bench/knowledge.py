"""Knowledge-base evaluation: retrieval and the answer/no-answer decision on a hand-written
bilingual set, language detection on the same questions, and the AI models' memory.

    python bench/knowledge.py                  # both backends, each in its own subprocess
    python bench/knowledge.py --backend pg     # one backend in this process
    python bench/knowledge.py --backend memory # the models' RSS in a fresh process

The set: ``loket/knowledge/examples/waddenveer.json`` (a ferry company with a shop and a café:
articles in English and Dutch, a few internal) and ``bench/data/knowledge_questions.json``
(customer questions in English and Dutch as customers write them, each labelled with the article
that answers it, or null when the knowledge base does not; some marked cross-language).

Per backend, on a throw-away database (PostgreSQL ``loket_bench_<pid>``, or SQLite in a temp
dir) after ``loket migrate``: the articles are imported, published and indexed (cut into
passages, embedded), then every question is asked in its own language through
``retrieval.search`` (top 3, public articles only) and ``retrieval.answer`` (the flow bot's and
the API's decision). Figures:

* ``knowledge.<db>.top1`` / ``top3``: share of answerable questions whose article is first / in
  the first three (``.cross.top3``: the cross-language ones alone);
* ``knowledge.<db>.answered_precision``: of the questions answered, the share answered with the
  right article (an unanswerable question answered counts as wrong); ``answered_share``: the
  share of answerable questions answered; ``declined_unanswerable``: the share of unanswerable
  ones declined;
* ``knowledge.<db>.heldout.*``: the same figures (no timings) on a second, held-out set,
  ``bench/data/knowledge_questions_heldout.json``, written later and never tuned on (the weights
  were tuned on the main set, which flatters it); its precision is a ``check:`` line, not a
  target. Its cross-language questions mix the two languages ("een extra bike op mijn booking");
* ``knowledge.<db>.search_p50_ms`` / ``p99_ms``: one search (embedding the question included);
* ``knowledge.language.accuracy``: language detection on the questions of three words or more
  (``accuracy_all``: every question);
* ``knowledge.memory.models_rss_mb``: a process's RSS with both models loaded (the embedding
  model and the language detector), and ``…added_mb`` over the same process before loading.

Targets (issue 9): top 3 ≥ 0.85, answered precision ≥ 0.9, language detection ≥ 0.95 for full
sentences, models under 400 MB RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c
from ingest import run_on_throwaway

BACKENDS = ("pg", "sqlite", "memory")
ADMIN_EMAIL = "bench@example.com"
WORKSPACE = "bench"
QUESTIONS = Path(__file__).resolve().parent / "data" / "knowledge_questions.json"
HELDOUT = Path(__file__).resolve().parent / "data" / "knowledge_questions_heldout.json"
TOP3_TARGET = 0.85
PRECISION_TARGET = 0.9
LANGUAGE_TARGET = 0.95
RSS_TARGET_MB = 400


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


@dataclass
class Score:
    answerable: int  # questions labelled with an article
    top3: float
    answered: int  # questions the bot answered (answerable or not)
    answered_right: int  # ... with the labelled article
    precision: float
    times: list[float]  # seconds per search
    decisions: list[tuple[float, bool, bool]]  # (confidence, right article?, answerable?)


def evaluate(prefix: str, workspace_id: int, ids: dict[str, int], questions: list[dict]) -> Score:
    """Ask every question through ``retrieval.search`` and ``retrieval.answer`` and print the
    set's figures under ``prefix``."""
    from loket.knowledge import retrieval

    answerable = [q for q in questions if q["article"]]
    unanswerable = [q for q in questions if not q["article"]]
    top1 = top3 = cross_total = cross_top3 = 0
    answered = answered_right = declined = answered_answerable = 0
    times: list[float] = []
    decisions = []  # (confidence, right article?, answerable?) for the threshold table
    for question in questions:
        expected = ids.get(question["article"]) if question["article"] else None
        began = time.perf_counter()
        hits = retrieval.search(workspace_id, question["question"], locale=question["language"],
                                limit=3)  # fmt: skip
        times.append(time.perf_counter() - began)
        found = [hit.article_id for hit in hits]
        if expected:
            top1 += bool(found) and found[0] == expected
            top3 += expected in found
            if question.get("cross"):
                cross_total += 1
                cross_top3 += expected in found
        result = retrieval.answer(workspace_id, question["question"], locale=question["language"])
        best = result.hit.article_id if result.hit else None
        decisions.append((result.confidence, best is not None and best == expected, bool(expected)))
        if result.text is not None:
            answered += 1
            answered_right += best == expected
            answered_answerable += bool(expected)
        elif not expected:
            declined += 1
    c.figure(f"{prefix}.questions", len(questions), "questions")
    c.figure(f"{prefix}.top1", _share(top1, len(answerable)), "x")
    c.figure(f"{prefix}.top3", _share(top3, len(answerable)), "x")
    c.figure(f"{prefix}.cross.top3", _share(cross_top3, cross_total), "x")
    precision = _share(answered_right, answered)
    c.figure(f"{prefix}.answered_precision", precision, "x")
    c.figure(f"{prefix}.answered_share", _share(answered_answerable, len(answerable)), "x")
    c.figure(f"{prefix}.declined_unanswerable", _share(declined, len(unanswerable)), "x")
    return Score(
        answerable=len(answerable),
        top3=_share(top3, len(answerable)),
        answered=answered,
        answered_right=answered_right,
        precision=precision,
        times=times,
        decisions=decisions,
    )


def measure(name: str) -> bool:
    from loket.knowledge import examples, languages, retrieval
    from loket.knowledge.models import Passage
    from loket.tenancy.models import Workspace

    prefix = f"knowledge.{name}"
    workspace = Workspace.objects.get(slug=WORKSPACE)
    data = examples.load("waddenveer")
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    started = time.perf_counter()
    ids = examples.import_into(workspace, data)
    c.figure(f"{prefix}.index_s", time.perf_counter() - started, "s")
    c.figure(f"{prefix}.articles", len(ids), "articles")
    c.figure(f"{prefix}.passages", Passage.objects.filter(workspace=workspace).count(), "passages")

    score = evaluate(prefix, workspace.pk, ids, questions)
    c.figure(f"{prefix}.search_p50_ms", c.percentile(score.times, 50) * 1000, "ms")
    c.figure(f"{prefix}.search_p99_ms", c.percentile(score.times, 99) * 1000, "ms")
    c.note(
        f"threshold (now {retrieval.ANSWER_THRESHOLD}): precision / share of answerable answered"
    )
    for threshold in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        taken = [d for d in score.decisions if d[0] >= threshold]
        right = sum(1 for d in taken if d[1])
        c.note(
            f"  {threshold:.2f}: {_share(right, len(taken)):.3f} / "
            f"{_share(right, score.answerable):.3f}"
        )
    ok = c.verdict(
        "target",
        score.top3 >= TOP3_TARGET,
        f"{prefix}.top3",
        f"{score.top3:.3f} of {score.answerable} answerable questions (need >= {TOP3_TARGET})",
    )
    ok &= c.verdict(
        "target",
        score.precision >= PRECISION_TARGET,
        f"{prefix}.answered_precision",
        f"{score.answered_right} right of {score.answered} answered = {score.precision:.3f} "
        f"(need >= {PRECISION_TARGET})",
    )

    right = right_full = full = 0
    for question in questions:
        code, _confidence = languages.detect(question["question"], ["en", "nl"])
        right += code == question["language"]
        if len(question["question"].split()) >= languages.MIN_WORDS:
            full += 1
            right_full += code == question["language"]
    c.figure("knowledge.language.accuracy", _share(right_full, full), "x")
    c.figure("knowledge.language.accuracy_all", _share(right, len(questions)), "x")
    ok &= c.verdict(
        "target",
        _share(right_full, full) >= LANGUAGE_TARGET,
        f"knowledge.{name}.language",
        f"{right_full} of {full} questions of {languages.MIN_WORDS}+ words "
        f"(need >= {LANGUAGE_TARGET})",
    )

    # The held-out set: reported, never a target (nothing was tuned on it, so it says how much
    # the figures above flatter the weights).
    heldout = evaluate(
        f"{prefix}.heldout", workspace.pk, ids, json.loads(HELDOUT.read_text(encoding="utf-8"))
    )
    c.verdict(
        "check",
        heldout.precision >= PRECISION_TARGET,
        f"{prefix}.heldout.answered_precision",
        f"{heldout.answered_right} right of {heldout.answered} answered = "
        f"{heldout.precision:.3f} on the held-out set (not a target; the main set needs >= "
        f"{PRECISION_TARGET})",
    )
    return ok


MEMORY_PROBE = r"""
import os, resource, sys
import django
django.setup()
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before = rss_mb()
from loket.knowledge import embeddings, languages
embeddings.embed(["Waar is mijn bestelling?", "Where is my order?"])
languages.detect("Mijn bestelling is nog niet aangekomen", ["en", "nl", "de", "fr"])
print(f"{before:.1f} {rss_mb():.1f}")
"""


def measure_memory() -> bool:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loket.settings", "SECRET_KEY": "bench"}
    with tempfile.TemporaryDirectory() as tmp:
        env["LOKET_VAR_DIR"] = tmp
        done = subprocess.run(
            [c.python(), "-c", MEMORY_PROBE], env=env, capture_output=True, text=True, check=True
        )
    before, after = (float(x) for x in done.stdout.split())
    c.figure("knowledge.memory.process_rss_before_mb", before, "MB")
    c.figure("knowledge.memory.models_rss_mb", after, "MB")
    c.figure("knowledge.memory.added_mb", after - before, "MB")
    return c.verdict(
        "target",
        after < RSS_TARGET_MB,
        "knowledge.memory",
        f"a Django process with both models loaded: {after:.0f} MB RSS ({after - before:.0f} MB "
        f"for the models; need < {RSS_TARGET_MB} MB)",
    )


def run_backend(name: str) -> bool:
    if name == "memory":
        return measure_memory()
    return run_on_throwaway(
        name,
        "knowledge",
        lambda backend: measure(name),
        admin_email=ADMIN_EMAIL,
        workspace=WORKSPACE,
    )


def main(argv: list[str] | None = None) -> int:
    return c.main_per_backend(__file__, __doc__, BACKENDS, run_backend, argv)


if __name__ == "__main__":
    sys.exit(main())
