"""What the offline models make of a conversation, after ingest: a coarse sentiment and urgency
estimate, and the labels the workspace's own history suggests (``ConversationInsight``).

Nothing here runs in the ingest's transaction or its ack path. ``sweep`` (the
``enrich_conversations`` job, every few seconds) reads the customer messages that arrived since
its last run (``SweepMark`` "enrichment"), and for each conversation they belong to re-reads its
latest customer messages and updates its insight; when the sentiment, the urgency or the
predicted labels change it emits ``ConversationUpdated`` (``changes={"sentiment": ...}``) in the
same transaction, so "conversation updated" rules run on them.

**Sentiment and urgency** are a lexicon estimate for English and Dutch, shown as an estimate:
word lists with valences, intensifiers ("very", "erg"), negation ("not happy", "niet blij"),
exclamation marks and ALL CAPS as intensity, a few customer-service phrases ("still not
arrived", "nog steeds niet"); urgency from cues ("urgent", "asap", "spoed", "vandaag nog", a
departure today, "third time I ask", shouting, several messages within minutes) and calm ones
("no rush", "geen haast"). It is measured on a hand-written labelled set
(tests/knowledge/data/sentiment.json); it is not a model and reads no other language well.

**Label prediction**: one-vs-rest logistic regression in numpy over hashed word unigrams and
bigrams of the customer's messages, trained per workspace on the conversations its agents
labelled (``train_due``, the hourly ``train_label_models`` job; retrained when a day old and
conversations labelled since, or at once after 50 of them). Predictions are suggestions: they
are stored and shown, never applied (a rule may apply them).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import re
import threading
import zlib
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from loket import events
from loket.inbox.models import Conversation, Label, Message, MessageKind
from loket.knowledge.models import (
    ConversationInsight,
    LabelModel,
    Sentiment,
    SweepMark,
    Urgency,
)
from loket.knowledge.sweeps import customer_messages, settled_customer_messages

SWEEP = "enrichment"
BATCH = 500
RECENT = 3  # customer messages read for sentiment and urgency, newest first
RECENT_WEIGHTS = (1.0, 0.5, 0.25)
LABEL_TEXT_MESSAGES = 5  # a conversation's first customer messages say what it is about
TEXT_LIMIT = 4000

# =============================================================================================
# Sentiment and urgency: a small lexicon, English and Dutch.
# =============================================================================================


def _words(valence: float, text: str) -> dict[str, float]:
    return dict.fromkeys(text.split(), valence)


LEXICON: dict[str, float] = {
    # -- negative, strong
    **_words(
        -3.0,
        "terrible terribly awful horrible horribly useless ridiculous disgusting worst "
        "unacceptable outrageous furious pathetic scam appalling shocking disgrace "
        "verschrikkelijk verschrikkelijke vreselijk vreselijke belachelijk belachelijke "
        "waardeloos waardeloze schandalig schandalige slechtste onacceptabel woedend "
        "oplichting oplichters bagger triest",
    ),
    # -- negative
    **_words(
        -2.0,
        "bad poor rude angry disappointed disappointing disappointment unhappy annoyed annoying "
        "frustrating frustrated frustration broken damaged wrong dirty sad worse fail failed "
        "failure crashing crashes crashed unfriendly incompetent complaint upset unusable "
        "hate hated lost missing mess nightmare "
        "slecht slechte boos boze teleurgesteld teleurstellend teleurstelling ontevreden "
        "kapot kapotte beschadigd beschadigde verkeerd verkeerde vies vieze onbeschoft "
        "onvriendelijk chagrijnig irritant gefrustreerd ergerlijk klacht kwijt verdwenen "
        "vermist zonde waardeloos slordig incompetent",
    ),
    # -- negative, mild
    **_words(
        -1.0,
        "problem problems issue issues late delay delayed cold slow confused confusing "
        "unfortunately error cancelled canceled waiting expensive overcharged worried "
        "probleem problemen vertraging vertraagd laat koud traag helaas jammer fout "
        "geannuleerd wachten wacht duur bezorgd ongerust",
    ),
    # -- positive, mild
    **_words(
        1.0,
        "fine quick fast easy solved resolved helped clear smooth "
        "snel vlot makkelijk opgelost geholpen duidelijk netjes goedgekeurd",
    ),
    # -- positive
    **_words(
        2.0,
        "good nice thanks thank thx appreciated appreciate happy glad pleased satisfied "
        "friendly helpful delicious lovely kind tasty comfortable recommend enjoyed "
        "goed goede prima fijn fijne mooi mooie lekker lekkere blij tevreden vriendelijk "
        "vriendelijke behulpzaam bedankt dank dankjewel dankuwel bedankjes aanrader "
        "gezellig gezellige complimenten compliment",
    ),
    # -- positive, strong
    **_words(
        3.0,
        "great excellent amazing wonderful fantastic perfect awesome brilliant superb "
        "outstanding love loved best "
        "geweldig geweldige uitstekend uitstekende fantastisch fantastische perfect perfecte "
        "heerlijk heerlijke top super prachtig prachtige fantastisch topservice",
    ),
}
INTENSIFIERS = {
    **_words(
        0.5,
        "very really so extremely totally absolutely incredibly super truly such "
        "erg heel zeer echt ontzettend enorm hartstikke vreselijk bijzonder",
    ),
    **_words(0.25, "quite pretty rather behoorlijk best nogal"),
    **_words(-0.4, "slightly somewhat bit beetje ietwat"),
}
NEGATORS = frozenset(
    _words(
        0,
        "not no never nobody nothing neither nor none cannot cant dont doesnt didnt isnt wasnt "
        "arent werent wont hardly without "
        "niet geen nooit niks niets nergens niemand zonder",
    )
)
NEGATION_WINDOW = 3  # words before a sentiment word that can negate it
NEGATION_FACTOR = -0.74
# Phrases customers complain with, scored as a whole (regular expressions over lower case).
PHRASES: list[tuple[re.Pattern, float]] = [
    (re.compile(p), v)
    for p, v in [
        (r"\bstill (?:\w+ ){0,2}(?:not|no|nothing|never|n't|waiting)\b", -2.0),
        (r"\bstill (?:has|have|had|did|does|is|are)n't\b", -2.0),
        (r"\bnever (?:arrived|received|got|came|showed)\b", -2.0),
        (r"\bnog (?:steeds|altijd) (?:niet|geen|niks|niets)\b", -2.0),
        (r"\b(?:no|zero) (?:answer|reply|response|one)\b", -1.5),
        (r"\b(?:geen|nooit) (?:antwoord|reactie|bericht)\b", -1.5),
        (r"\b(?:nobody|no one|niemand)\b", -1.5),
        (r"\b(?:doesn't|does not|don't|do not|isn't|is not|not) work(?:ing|s)?\b", -1.5),
        (r"\bwerkt (?:\w+ )?niet\b|\bdoet (?:het )?niet\b|\bdoet het niet meer\b", -1.5),
        (r"\b(?:can't|cannot|can not|couldn't|unable to)\b", -1.0),
        (r"\bkan (?:\w+ )?niet\b|\bkunnen (?:\w+ )?niet\b|\blukt (?:\w+ )?niet\b", -1.0),
        (r"\b(?:charged|billed) twice\b|\bdouble charged\b", -2.0),
        (r"\b(?:twee keer|dubbel) (?:afgeschreven|betaald|gefactureerd)\b", -2.0),
        (r"\b(?:money|geld) (?:back|terug)\b", -1.0),
        (r"\bwaste of (?:time|money)\b|\bzonde van\b", -2.0),
        (r"\b(?:third|fourth|3rd|4th|derde|vierde) (?:time|keer)\b", -1.5),
        (r"\bhow many times\b|\bhoe vaak (?:nog|moet)\b", -1.5),
        # Words that mean something else here: "hoe laat" (what time), "zo snel mogelijk".
        (r"\bhoe laat\b", 1.0),
        (r"\bzo snel mogelijk\b|\bso quick(?:ly)? as\b", -1.0),
        (r"\bthank(?:s| you) (?:so much|a lot|very much)\b", 1.0),
        (r"\bdank (?:je|u) wel\b|\bheel erg bedankt\b", 1.0),
    ]
]
_TOKEN = re.compile(r"[A-Za-zÀ-ÿ0-9]+(?:'[A-Za-z]+)?|!")
EXCLAIM_BOOST = 0.15  # per "!", up to three
CAPS_BOOST = 0.5
NORMALISE = 6.0  # score / sqrt(score² + NORMALISE): -1 .. 1
POSITIVE_AT = 0.3
NEGATIVE_AT = -0.3

HIGH_URGENCY: list[re.Pattern] = [
    re.compile(p)
    for p in [
        r"\burgent(?:ly)?\b|\bemergency\b|\basap\b|\ba\.s\.a\.p\b|\bimmediately\b",
        r"\bright (?:now|away)\b|\bstraight away\b|\bas soon as possible\b|\bthis instant\b",
        r"\bspoed\b|\bspoedig\b|\bdringend\b|\bnoodgeval\b|\bonmiddellijk\b|\bper direct\b",
        r"\bvandaag nog\b|\bnu meteen\b|\bz\.?s\.?m\.?\b|\bzo snel mogelijk\b|\bmeteen\b",
        r"\b(?:third|fourth|fifth|3rd|4th|5th|derde|vierde|vijfde) (?:time|keer)\b",
        r"\bhow many times\b|\bhoe vaak (?:nog|moet)\b|\bagain and again\b",
        r"\bwe(?:'re| are) (?:at|in) the (?:terminal|port|harbour|harbor|airport|station|gate)\b",
        r"\b(?:sta|staan|zit|zitten) (?:nu )?(?:bij|in|op|aan) de "
        r"(?:terminal|haven|kade|luchthaven|gate|slagboom)\b",
    ]
]
_SOON = re.compile(
    r"\b(?:today|tonight|this (?:morning|afternoon|evening)|within (?:the|an) hour|in an hour|"
    r"in (?:\d+|two|three|ten|twenty|thirty) minutes|vandaag|vanavond|vanmiddag|vanochtend|"
    r"vannacht|binnen een uur|over een uur|over (?:\d+|tien|twintig|dertig) minuten)\b"
)
_DEPARTURE = re.compile(
    r"\b(?:leave|leaves|leaving|depart|departs|departing|departure|sail|sails|sailing|ferry|"
    r"boat|flight|train|check-?in|boarding|deadline|closes|"
    r"vertrek|vertrekt|vertrekken|afvaart|boot|veerboot|overtocht|vlucht|trein|inchecken|"
    r"boarden|sluit|deadline)\b"
)
LOW_URGENCY: list[re.Pattern] = [
    re.compile(p)
    for p in [
        r"\bno (?:rush|hurry|pressure)\b|\bnot urgent\b|\bwhenever\b|\bno need to hurry\b",
        r"\bwhen(?:ever)? you (?:have|get|find) (?:time|a (?:chance|moment|minute))\b",
        r"\bjust (?:wondering|curious|asking)\b|\bout of curiosity\b|\bsometime\b",
        r"\bnext (?:month|year|season|summer|winter|spring)\b|\bi was wondering\b",
        r"\bgeen (?:haast|spoed)\b|\bniet dringend\b",
        r"\bals (?:je|jij|u|jullie) tijd (?:hebt|heeft|hebben)\b",
        r"\bik vroeg me af\b|\bwanneer het (?:uitkomt|schikt)\b|\bgeen idee of\b",
        r"\bvolgende? (?:maand|jaar|seizoen|zomer|winter)\b|\bvolgend jaar\b|\bnieuwsgierig\b",
    ]
]
BURST_MESSAGES = 3  # this many customer messages ...
BURST_WINDOW = dt.timedelta(minutes=10)  # ... within this long: urgent


@dataclass(frozen=True)
class Estimate:
    sentiment: str  # negative | neutral | positive
    score: float  # -1 .. 1
    urgency: str  # low | normal | high
    urgency_cues: tuple[str, ...] = ()


def _is_shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    words = [w for w in re.findall(r"[A-Za-zÀ-ÿ]+", text) if len(w) > 1]
    if len(letters) < 8 or len(words) < 3:
        return False
    return sum(c.isupper() for c in letters) / len(letters) >= 0.7


def _raw_score(text: str) -> float:
    """The sum of the message's word valences, intensified and negated; 0 for nothing said."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    lowered = text.lower()
    tokens = [(m.group(0).lower(), m.group(0)) for m in _TOKEN.finditer(text)]
    words = [t for t in tokens if t[0] != "!"]
    total = 0.0
    for index, (word, original) in enumerate(words):
        valence = LEXICON.get(word)
        if valence is None:
            continue
        before = [w for w, _o in words[max(0, index - NEGATION_WINDOW) : index]]
        boost = sum(INTENSIFIERS.get(w, 0.0) for w in before[-2:])
        value = valence * (1 + boost)
        if len(original) > 1 and original.isupper():
            value *= 1 + CAPS_BOOST
        if any(w in NEGATORS or w.endswith("n't") for w in before):
            value *= NEGATION_FACTOR
        total += value
    for pattern, valence in PHRASES:
        total += valence * len(pattern.findall(lowered))
    if total:
        exclaims = min(lowered.count("!"), 3)
        total *= 1 + EXCLAIM_BOOST * exclaims
        if _is_shouting(text):
            total *= 1 + CAPS_BOOST
    elif _is_shouting(text):
        total = -1.0  # shouting with no word to say why is rarely happy
    return total


def _normalise(score: float) -> float:
    return score / math.sqrt(score * score + NORMALISE) if score else 0.0


def _sentiment_of(score: float) -> str:
    if score >= POSITIVE_AT:
        return Sentiment.POSITIVE
    if score <= NEGATIVE_AT:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def _urgency_cues(text: str) -> tuple[list[str], bool]:
    """The phrases that make a message urgent, and whether it says there is no hurry."""
    lowered = text.lower().replace("\u2019", "'")
    cues = [m.group(0) for pattern in HIGH_URGENCY if (m := pattern.search(lowered))]
    calm = any(pattern.search(lowered) for pattern in LOW_URGENCY)
    if calm:  # "not urgent", "geen spoed": the calm reading wins
        cues = [c for c in cues if c not in ("urgent", "spoed", "dringend")]
    soon, leaving = _SOON.search(lowered), _DEPARTURE.search(lowered)
    if soon and leaving:
        cues.append(f"{leaving.group(0)} {soon.group(0)}")
    if _is_shouting(text):
        cues.append("ALL CAPS")
    return cues, calm


def estimate(text: str) -> Estimate:
    """Sentiment and urgency of one customer message (a coarse estimate)."""
    score = _normalise(_raw_score(text or ""))
    sentiment = _sentiment_of(score)
    cues, calm = _urgency_cues(text or "")
    if cues:
        urgency = Urgency.HIGH
    elif calm or (sentiment == Sentiment.POSITIVE and "?" not in (text or "")):
        urgency = Urgency.LOW  # no hurry, or only thanks and praise
    else:
        urgency = Urgency.NORMAL
    return Estimate(sentiment, round(score, 3), urgency, tuple(cues))


def conversation_estimate(recent: list[tuple[str, dt.datetime]]) -> Estimate:
    """Sentiment and urgency of a conversation from its latest customer messages, newest
    first (text, created_at): the newest weighs most; an urgent message in the last hour keeps
    it urgent; several messages within minutes make it so."""
    recent = recent[:RECENT]
    if not recent:
        return Estimate(Sentiment.NEUTRAL, 0.0, Urgency.NORMAL)
    estimates = [estimate(text) for text, _at in recent]
    weights = RECENT_WEIGHTS[: len(estimates)]
    score = sum(w * e.score for w, e in zip(weights, estimates, strict=True)) / sum(weights)
    newest_at = recent[0][1]
    cues = list(estimates[0].urgency_cues)
    for (_text, at), found in zip(recent[1:], estimates[1:], strict=True):
        if found.urgency == Urgency.HIGH and newest_at - at <= dt.timedelta(hours=1):
            cues.extend(found.urgency_cues)
    if len(recent) >= BURST_MESSAGES and newest_at - recent[BURST_MESSAGES - 1][1] <= BURST_WINDOW:
        cues.append("several messages within minutes")
    urgency = Urgency.HIGH if cues else estimates[0].urgency
    return Estimate(_sentiment_of(score), round(score, 3), urgency, tuple(dict.fromkeys(cues)))


# =============================================================================================
# Labels: one-vs-rest logistic regression over hashed unigrams and bigrams.
# =============================================================================================
DIMENSIONS = 1 << 14
MIN_CONVERSATIONS = 30  # a workspace with fewer labelled conversations gets no model
MIN_EXAMPLES = 5  # a label given fewer times is left out of the model
RETRAIN_AFTER = 50  # newly labelled conversations that make a retraining due at once
RETRAIN_AGE = dt.timedelta(days=1)  # else a model this old is retrained if anything changed
MAX_TRAINING = 3000  # the newest labelled conversations learnt from
HOLDOUT_EVERY = 5  # every fifth conversation is held out to measure the model
THRESHOLD = 0.6  # a label is suggested from this score
MAX_SUGGESTED = 3
EPOCHS = 150
LEARNING_RATE = 0.1
L2 = 1e-4
_FEATURE_TOKEN = re.compile(r"[a-zà-ÿ0-9]+")


def features(text: str) -> np.ndarray:
    """The hashed unigram and bigram buckets of a text (unique, sorted)."""
    words = [w for w in _FEATURE_TOKEN.findall((text or "").lower()[:TEXT_LIMIT]) if len(w) > 1]
    grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return np.unique(
        np.fromiter(
            (zlib.crc32(g.encode()) % DIMENSIONS for g in grams), dtype=np.int64, count=len(grams)
        )
    )


def _sparse(docs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as (row index, bucket, value) triples, each row's values of unit length."""
    rows = np.concatenate([np.full(len(d), i, dtype=np.int64) for i, d in enumerate(docs)])
    buckets = np.concatenate([*docs, np.zeros(0, dtype=np.int64)])
    values = np.concatenate(
        [np.full(len(d), 1 / math.sqrt(len(d)) if len(d) else 0.0) for d in docs]
    )
    return rows, buckets, values


def _scores(weights: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    """Probabilities, one row per document and one column per label."""
    if not docs:
        return np.zeros((0, weights.shape[1]))
    rows, buckets, values = _sparse(docs)
    logits = np.empty((len(docs), weights.shape[1]))
    for label in range(weights.shape[1]):
        logits[:, label] = np.bincount(
            rows, weights=values * weights[buckets, label], minlength=len(docs)
        )
    logits += weights[DIMENSIONS]  # the bias row
    return 1 / (1 + np.exp(-np.clip(logits, -30, 30)))


def fit(docs: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """Weights ((DIMENSIONS + 1) by labels, the last row the bias) of one logistic regression per
    label (``targets``: documents by labels of 0/1), with Adam; a label's rare positives weigh
    more (square root of the imbalance)."""
    n, labels = targets.shape
    weights = np.zeros((DIMENSIONS + 1, labels))
    rows, buckets, values = _sparse(docs)
    positives = targets.sum(axis=0)
    balance = np.sqrt(np.maximum(n - positives, 1) / np.maximum(positives, 1))
    sample = np.where(targets > 0, balance, 1.0)
    sample /= sample.sum(axis=0)
    first, second = np.zeros_like(weights), np.zeros_like(weights)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, EPOCHS + 1):
        error = (_scores(weights, docs) - targets) * sample
        gradient = np.empty_like(weights)
        for label in range(labels):
            gradient[:DIMENSIONS, label] = np.bincount(
                buckets, weights=values * error[rows, label], minlength=DIMENSIONS
            )
        gradient[DIMENSIONS] = error.sum(axis=0)
        gradient[:DIMENSIONS] += L2 * weights[:DIMENSIONS]
        first = beta1 * first + (1 - beta1) * gradient
        second = beta2 * second + (1 - beta2) * gradient * gradient
        corrected = first / (1 - beta1**step)
        scale = np.sqrt(second / (1 - beta2**step)) + 1e-8
        weights -= LEARNING_RATE * corrected / scale
    return weights


def top1_accuracy(weights: np.ndarray, docs: list[np.ndarray], targets: np.ndarray) -> float:
    """How often the best-scored label is one the agents gave."""
    if not docs:
        return 0.0
    best = _scores(weights, docs).argmax(axis=1)
    return float(np.mean(targets[np.arange(len(docs)), best] > 0))


def _label_texts(conversation_ids: list[int]) -> dict[int, str]:
    """Each conversation's first customer messages, joined (one query)."""
    texts: dict[int, list[str]] = {pk: [] for pk in conversation_ids}
    rows = (
        customer_messages()
        .filter(conversation_id__in=conversation_ids)
        .order_by("conversation_id", "pk")
        .values_list("conversation_id", "text")
    )
    for conversation_id, text in rows.iterator(chunk_size=2000):
        found = texts[conversation_id]
        if len(found) < LABEL_TEXT_MESSAGES and text:
            found.append(text)
    return {pk: "\n".join(parts)[:TEXT_LIMIT] for pk, parts in texts.items() if parts}


def labelled_history(workspace_id: int) -> tuple[list[str], list[set[str]], list[int]]:
    """The workspace's labelled conversations, newest first: customer text, label names, ids."""
    ids = list(
        Conversation.objects.filter(
            workspace_id=workspace_id, labels__isnull=False, merged_into__isnull=True
        )
        .distinct()
        .order_by("-pk")
        .values_list("pk", flat=True)[:MAX_TRAINING]
    )
    names: dict[int, set[str]] = {pk: set() for pk in ids}
    through = Conversation.labels.through.objects.filter(
        conversation_id__in=ids, label__workspace_id=workspace_id
    ).values_list("conversation_id", "label__name")
    for conversation_id, name in through:
        names[conversation_id].add(name)
    texts = _label_texts(ids)
    kept = [pk for pk in ids if pk in texts and names[pk]]
    return [texts[pk] for pk in kept], [names[pk] for pk in kept], kept


@dataclass
class Trained:
    labels: list[str]
    weights: np.ndarray
    samples: int
    accuracy: float | None


def train(texts: list[str], label_sets: list[set[str]]) -> Trained | None:
    """A model of these labelled texts, or None when there are too few: fewer than
    MIN_CONVERSATIONS, or no label given MIN_EXAMPLES times. The accuracy is the top-1 accuracy
    on every HOLDOUT_EVERY-th conversation, learnt without them; the model keeps them all."""
    if len(texts) < MIN_CONVERSATIONS:
        return None
    counts: dict[str, int] = {}
    for found in label_sets:
        for name in found:
            counts[name] = counts.get(name, 0) + 1
    labels = sorted(name for name, count in counts.items() if count >= MIN_EXAMPLES)
    if not labels:
        return None
    docs = [features(text) for text in texts]
    targets = np.array([[1.0 if name in found else 0.0 for name in labels] for found in label_sets])
    held = np.array([i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 for i in range(len(docs))])
    held &= targets.sum(axis=1) > 0  # only conversations with a modelled label measure it
    learn = [i for i in range(len(docs)) if not held[i]]
    test = [i for i in range(len(docs)) if held[i]]
    accuracy = None
    if test:
        weights = fit([docs[i] for i in learn], targets[learn])
        accuracy = round(top1_accuracy(weights, [docs[i] for i in test], targets[test]), 4)
    return Trained(labels, fit(docs, targets), len(docs), accuracy)


def _dump(weights: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, weights.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


def _load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)  # float32: half the memory


def train_workspace(workspace_id: int) -> LabelModel | None:
    """(Re)train the workspace's label model from its own history; None when it has too little
    (an existing model then stays as it was)."""
    texts, label_sets, _ids = labelled_history(workspace_id)
    trained = train(texts, label_sets)
    if trained is None:
        return None
    model, _created = LabelModel.objects.update_or_create(
        workspace_id=workspace_id,
        defaults={
            "labels": trained.labels,
            "weights": _dump(trained.weights),
            "samples": trained.samples,
            "accuracy": trained.accuracy,
            "trained_at": timezone.now(),
        },
    )
    return model


def labelled_since(workspace_id: int, since: dt.datetime) -> int:
    """How many of the workspace's labelled conversations had their labels changed since then
    (their timeline's "labels_changed" lines; the message timeline index finds them)."""
    labelled = Conversation.labels.through.objects.filter(label__workspace_id=workspace_id).values(
        "conversation_id"
    )
    return (
        Message.objects.filter(
            workspace_id=workspace_id,
            conversation_id__in=labelled,
            kind=MessageKind.ACTIVITY,
            text="labels_changed",
            created_at__gt=since,
        )
        .values("conversation_id")
        .distinct()
        .count()
    )


def retraining_due(workspace_id: int, labelled: int, model: LabelModel | None, now) -> bool:
    """Due: no model yet (with enough history); RETRAIN_AFTER conversations labelled since it
    was trained, or that many more labelled conversations than it learnt from; or a day old with
    any conversation labelled since."""
    if labelled < MIN_CONVERSATIONS:
        return False
    if model is None or labelled - model.samples >= RETRAIN_AFTER:
        return True
    changed = labelled_since(workspace_id, model.trained_at)
    return changed >= RETRAIN_AFTER or (changed > 0 and now - model.trained_at >= RETRAIN_AGE)


def train_due(now=None) -> list[int]:
    """Retrain every workspace whose model is due; returns their ids."""
    now = now or timezone.now()
    counts = dict(
        Conversation.objects.filter(labels__isnull=False, merged_into__isnull=True)
        .values("workspace_id")
        .annotate(n=Count("pk", distinct=True))
        .filter(n__gte=MIN_CONVERSATIONS)
        .values_list("workspace_id", "n")
    )
    models = {
        m.workspace_id: m
        for m in LabelModel.objects.filter(workspace_id__in=counts).only(
            "workspace_id", "samples", "trained_at"
        )
    }
    done = []
    for workspace_id, labelled in sorted(counts.items()):
        due = retraining_due(
            workspace_id, min(labelled, MAX_TRAINING), models.get(workspace_id), now
        )
        if due and train_workspace(workspace_id) is not None:
            done.append(workspace_id)
    return done


_lock = threading.Lock()
_models: dict[int, tuple[dt.datetime, list[str], np.ndarray]] = {}


def _label_models(workspace_ids: set[int]) -> dict[int, tuple[list[str], np.ndarray]]:
    """The workspaces' label models, cached in the process until retrained."""
    stamps = dict(
        LabelModel.objects.filter(workspace_id__in=workspace_ids).values_list(
            "workspace_id", "trained_at"
        )
    )
    with _lock:
        stale = [pk for pk, at in stamps.items() if pk not in _models or _models[pk][0] != at]
    if stale:
        for model in LabelModel.objects.filter(workspace_id__in=stale):
            if model.weights:
                loaded = (model.trained_at, list(model.labels), _load(model.weights))
                with _lock:
                    _models[model.workspace_id] = loaded
    with _lock:
        return {pk: _models[pk][1:] for pk in stamps if pk in _models}


def predict(model: tuple[list[str], np.ndarray], text: str) -> list[dict]:
    """The labels scored at least THRESHOLD, best first: ``[{"name", "score"}]``."""
    labels, weights = model
    if not text.strip() or not labels:
        return []
    scores = _scores(weights, [features(text)])[0]
    ranked = sorted(zip(labels, scores, strict=True), key=lambda item: -item[1])
    return [
        {"name": name, "score": round(float(score), 3)}
        for name, score in ranked[:MAX_SUGGESTED]
        if score >= THRESHOLD
    ]


# =============================================================================================
# The sweep
# =============================================================================================
def _changes(insight: ConversationInsight | None, found: Estimate, labels: list[dict]) -> dict:
    """What changed for the rules; a conversation without an insight counts as neutral, normal
    and without suggestions (so an ordinary first message is no event)."""
    before_sentiment = (insight.sentiment if insight else "") or Sentiment.NEUTRAL
    before_urgency = (insight.urgency if insight else "") or Urgency.NORMAL
    before_labels = sorted(item["name"] for item in (insight.predicted_labels if insight else []))
    changes: dict = {}
    if found.sentiment != before_sentiment:
        changes["sentiment"] = str(found.sentiment)
    if found.urgency != before_urgency:
        changes["urgency"] = str(found.urgency)
    names = sorted(item["name"] for item in labels)
    if names != before_labels:
        changes["predicted_labels"] = names
    return changes


def enrich(conversation_id: int, workspace_id: int, model=None) -> dict:
    """Update one conversation's insight from its latest customer messages; returns what
    changed (and emits it as ``ConversationUpdated``, in this transaction)."""
    recent = list(
        customer_messages()
        .filter(conversation_id=conversation_id)
        .order_by("-pk")
        .values_list("pk", "text", "created_at")[:RECENT]
    )
    if not recent:
        return {}
    found = conversation_estimate([(text, at) for _pk, text, at in recent])
    labels: list[dict] = []
    if model is not None:
        text = _label_texts([conversation_id]).get(conversation_id, "")
        newest = recent[0][1]
        if newest and newest not in text:
            text = f"{text}\n{newest}"[:TEXT_LIMIT]
        labels = predict(model, text)
    with transaction.atomic():
        insight = (
            ConversationInsight.objects.select_for_update()
            .filter(conversation_id=conversation_id)
            .first()
        )
        changes = _changes(insight, found, labels)
        if insight is None:
            insight = ConversationInsight(
                workspace_id=workspace_id, conversation_id=conversation_id
            )
        insight.sentiment = found.sentiment
        insight.sentiment_score = found.score
        insight.urgency = found.urgency
        insight.predicted_labels = labels
        insight.message_id = recent[0][0]
        insight.updated_at = timezone.now()
        insight.save()
        if changes:
            events.emit(
                events.ConversationUpdated(
                    workspace_id, events.Actor.system(), conversation_id, changes
                )
            )
    return changes


def sweep(limit: int = BATCH) -> int:
    """Enrich the conversations of the customer messages that arrived since the last sweep;
    returns how many were read."""
    mark, _created = SweepMark.objects.get_or_create(name=SWEEP)
    rows = list(
        settled_customer_messages(mark.last_id).values_list(
            "pk", "conversation_id", "workspace_id"
        )[:limit]
    )
    if not rows:
        return 0
    conversations = {conversation_id: workspace_id for _pk, conversation_id, workspace_id in rows}
    models = _label_models(set(conversations.values()))
    for conversation_id, workspace_id in conversations.items():
        enrich(conversation_id, workspace_id, models.get(workspace_id))
    SweepMark.objects.filter(pk=mark.pk).update(last_id=rows[-1][0], updated_at=timezone.now())
    return len(rows)


# =============================================================================================
# Shown to agents
# =============================================================================================
def insight_of(conversation: Conversation) -> ConversationInsight | None:
    """The conversation's insight if it was loaded with it (``select_related("insight")``) or
    exists; None before the sweep read it."""
    try:
        return conversation.insight
    except ConversationInsight.DoesNotExist:
        return None


def sidebar(conversation: Conversation, labels: list[Label], label_ids: set[int]) -> dict | None:
    """What the contact sidebar shows: the estimate and the suggested labels that exist and are
    not on the conversation yet, each with the label set to post to add it."""
    insight = insight_of(conversation)
    if insight is None or not insight.sentiment:
        return None
    by_name = {label.name: label for label in labels}
    suggested = []
    for item in insight.predicted_labels or []:
        label = by_name.get(item.get("name"))
        if label is not None and label.pk not in label_ids:
            suggested.append(
                {
                    "label": label,
                    "score": item.get("score", 0),
                    "post_ids": sorted(label_ids | {label.pk}),
                }
            )
    return {"insight": insight, "suggested": suggested}
