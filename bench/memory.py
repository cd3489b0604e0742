"""Memory service at scale: ingest rate, HNSW search latency and recall@10, against exact search.

One scratch embedded PostgreSQL 18 + pgvector (unix socket in a temp dir, run as a
foreground child and stopped at the end) with the app's migrations: the real ``memory``
table and its HNSW index (m=16, ef_construction=200). One tenant holds ``--n`` memories of
subject ``bench-user``; ``--noise-tenants`` other tenants hold ``--noise`` memories of the
same subject name. Texts are generated sentences (templates × vocabularies, fixed seed);
their embeddings are cached under ``$AIMPACT_HOME/bench-cache`` (``.aimpact/bench-cache``).

Ingest: a binary COPY of the precomputed vectors with the HNSW index dropped, then the
index build (same definition as the migration) and ANALYZE, each timed; then the product
path into the indexed table on a sample (``MemoryStore.add`` → ``set_embeddings``, in
batches of ``EMBED_BATCH``), without and with the embedding time.

Search: ``--searches`` query texts (questions, none of them stored) through
``MemoryStore.search`` (HNSW, ``touch=False``, k=10) one at a time. The baseline in the
same run is ``MemoryStore.exact_search`` (sequential scan) on the first ``--exact``
queries. Recall@10 is measured against the exact nearest neighbours over the same
vectors (numpy, itself checked against the SQL exact search), at ``EF_SEARCH`` and a
sweep of ``hnsw.ef_search`` values.

Usage: ``python -m bench.memory [--n N] [--noise N] [--searches S] [--embedder minilm|hash]``
(quick smoke: ``--n 5000 --noise 5000 --searches 200 --embedder hash``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import string
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import structlog
from pgvector.psycopg import register_vector
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.memory import EMBED_BATCH
from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import EMBEDDING_DIM
from core.ids import new_id
from core.memory.embedders import Embedder, HashEmbedder, MiniLMEmbedder
from core.memory.store import EF_SEARCH, MemoryStore, NewMemory
from core.provisioning import create_tenant
from workers.embedded import postgres
from workers.embedded.process import ManagedProcess

Matrix = npt.NDArray[np.float32]

SUBJECT = "bench-user"
K = 10
TARGET_P95_MS = 15.0
TARGET_RECALL = 0.95
TIE = 1e-5
"""A hit at most this much farther than the exact k-th neighbour counts as correct (ties, float rounding)."""
HNSW_INDEX = "ix_memory_embedding_hnsw"
BUILD_MEMORY = "1GB"
"""``maintenance_work_mem`` for the index build: the graph of 200k×384 vectors outgrows the 64 MB default."""
MAX_EF = 1600

# --- generated texts -------------------------------------------------------------------------------------------


def _words(spec: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in spec.split("|"))


VOCAB: dict[str, tuple[str, ...]] = {
    "person": _words(
        "my sister|my brother|my mother|my father|my manager|my best friend|my neighbour|my partner|my son|"
        "my daughter|my cousin|my landlord|my dentist|my tennis coach|my flatmate|my grandmother|my uncle|"
        "my aunt|my accountant|my mentor|my team lead|my niece|my nephew|my wife|my husband"
    ),
    "name": _words(
        "Ana|Tom|Priya|Lucas|Mei|Omar|Sofia|Jonas|Aisha|Diego|Hana|Pierre|Nina|Kofi|Elena|Raj|Chloe|Mateo|"
        "Yuki|Lars|Fatima|Noah|Ingrid|Tariq|Zoe|Ivan|Leila|Marco|Sara|Ben|Amara|Felix|Rosa|Kenji|Maya|Sven"
    ),
    "city": _words(
        "Lisbon|Porto|Berlin|Munich|Paris|Lyon|Madrid|Seville|Rome|Milan|Vienna|Prague|Warsaw|Dublin|"
        "Edinburgh|London|Oslo|Stockholm|Helsinki|Copenhagen|Amsterdam|Brussels|Zurich|Athens|Istanbul|"
        "Cairo|Nairobi|Lagos|Tokyo|Osaka|Seoul|Singapore|Sydney|Toronto|Montreal|Boston|Chicago|Denver|"
        "Austin|Lima|Bogota|Santiago"
    ),
    "food": _words(
        "sushi|ramen|pizza|tacos|paella|curry|pho|falafel|lasagne|dumplings|risotto|bibimbap|pad thai|"
        "goulash|burritos|pierogi|couscous|moussaka|kimchi stew|fish and chips|mushroom soup|lentil dal|"
        "grilled sardines|vegan burgers|cheesecake|croissants|dark chocolate|blueberry pancakes"
    ),
    "drink": _words(
        "green tea|black coffee|oat milk lattes|espresso|sparkling water|red wine|craft beer|chai|"
        "matcha|orange juice|kombucha|hot chocolate|mint tea|iced coffee|lemonade"
    ),
    "hobby": _words(
        "rock climbing|baking sourdough|birdwatching|chess|knitting|trail running|photography|pottery|"
        "gardening|salsa dancing|painting watercolours|woodworking|board games|surfing|fishing|"
        "playing video games|writing short stories|cycling|yoga|hiking|sailing|skiing|cooking Thai food|"
        "learning magic tricks|building model trains|astronomy|journaling|scuba diving"
    ),
    "job": _words(
        "nurse|software engineer|teacher|architect|data analyst|chef|lawyer|pharmacist|electrician|"
        "graphic designer|accountant|product manager|journalist|physiotherapist|civil engineer|"
        "veterinarian|translator|firefighter|pilot|biologist|sales manager|carpenter|librarian|"
        "dentist|marketing lead|researcher|mechanic|social worker"
    ),
    "pet": _words(
        "dog|cat|rabbit|parrot|hamster|tortoise|goldfish|guinea pig|ferret|labrador|beagle|"
        "siamese cat|border collie|cockatiel|bearded dragon"
    ),
    "day": _words("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"),
    "month": _words("January|February|March|April|May|June|July|August|September|October|November|December"),
    "time": _words(
        "in the morning|after lunch|at noon|in the evening|late at night|before work|after work|"
        "on weekends|at 7am|at 6pm|during the commute|on Sunday mornings|every other day"
    ),
    "language": _words(
        "Spanish|Portuguese|German|French|Italian|Japanese|Korean|Mandarin|Arabic|Swedish|Dutch|Greek|"
        "Polish|Turkish|Hindi|Swahili"
    ),
    "sport": _words(
        "tennis|football|basketball|badminton|squash|volleyball|table tennis|golf|swimming|rowing|"
        "padel|cricket|rugby|handball|boxing|fencing|ice hockey|bouldering"
    ),
    "instrument": _words(
        "piano|guitar|violin|cello|drums|saxophone|flute|ukulele|trumpet|bass guitar|harmonica|clarinet"
    ),
    "genre": _words(
        "jazz|science fiction|crime fiction|classical music|hip hop|fantasy|history books|poetry|"
        "techno|folk music|biographies|thrillers|indie rock|romance novels|philosophy"
    ),
    "colour": _words("red|blue|green|black|white|silver|yellow|orange|grey|dark blue|burgundy|beige"),
    "allergy": _words("peanuts|shellfish|gluten|lactose|pollen|cats|penicillin|eggs|soy|sesame|bee stings|dust mites"),
    "project": _words(
        "the Q3 budget report|the website redesign|the mobile app launch|the kitchen renovation|"
        "the wedding planning|the data migration|the marathon training plan|the garden shed|"
        "the grant application|the office move|the onboarding guide|the pricing page|the thesis|"
        "the API rewrite|the charity fundraiser|the family reunion|the tax return|the podcast|"
        "the security audit|the customer survey|the novel draft|the holiday itinerary"
    ),
    "tool": _words(
        "Excel|Notion|Figma|Jira|Trello|VS Code|Vim|Google Docs|Slack|Obsidian|Airtable|Asana|"
        "Photoshop|Blender|Tableau|Postgres|Python notebooks|a paper notebook|Miro|Linear"
    ),
    "company": _words(
        "Acme|Globex|Initech|Umbrella Labs|Stark Logistics|Wayne Foods|Hooli|Vandelay Imports|"
        "Soylent Systems|Cyberdyne|Tyrell Robotics|Wonka Sweets|Aperture Health|Oscorp|Pied Piper|"
        "Massive Dynamic|Blue Sun|Monarch Studios|Gringotts Bank|Duff Brewing"
    ),
    "car": _words(
        "Toyota Corolla|VW Golf|Tesla Model 3|Renault Clio|Fiat 500|Volvo XC60|Honda Civic|Ford Focus|"
        "Mini Cooper|Kia Niro|Skoda Octavia|Peugeot 208|BMW i3|Nissan Leaf|Mazda MX-5"
    ),
    "event": _words(
        "dentist appointment|team offsite|birthday party|job interview|parent-teacher meeting|"
        "yoga retreat|doctor's check-up|flight|concert|wedding|book club meeting|performance review|"
        "piano recital|house viewing|conference talk|haircut"
    ),
    "feeling": _words(
        "loves|enjoys|can't stand|is learning|wants to try|gave up|is getting better at|is bored of|"
        "misses|is nervous about"
    ),
}

TEMPLATES: tuple[str, ...] = (
    "The user lives in {city} and works as a {job}.",
    "{person} is allergic to {allergy}.",
    "The user {feeling} {hobby} {time}.",
    "The user's favourite food is {food}, ideally with {drink}.",
    "The user has a {pet} called {name}.",
    "The user is learning {language} and practises {time}.",
    "{person} lives in {city} and visits every {month}.",
    "The user's {event} with {name} is on {day} {time}.",
    "The user prefers {tool} over {tool2} for {project}.",
    "The user plays {sport} with {person} every {day}.",
    "The user is working on {project} for {company}, due in {month}.",
    "The user drives a {colour} {car}.",
    "The user's budget for {project} is {num} euros.",
    "The user reads {genre} before bed and {feeling} {hobby}.",
    "The user's birthday is on {month} {date}.",
    "The user wants to visit {city} in {month} with {person}.",
    "The user avoids {food} because of an allergy to {allergy}.",
    "{name} from {company} is the user's main contact for {project}.",
    "The user plays the {instrument} and listens to {genre}.",
    "The user has been a {job} in {city} for {years} years.",
    "The user drinks {drink} {time}.",
    "{person} works at {company} as a {job}.",
    "The user's {event} is booked for {month} {date} in {city}.",
    "The user {feeling} {sport} since moving to {city}.",
    "{person} makes the best {food} and always brings {drink}.",
    "The user paid {num} euros for a {colour} {instrument}.",
    "The user asked to be reminded about the {event} on {day}.",
    "The user keeps notes for {project} in {tool}.",
    "{person} is a {job} who {feeling} {hobby}.",
    "The user met {name} at a {sport} club in {city}.",
    "The user's {pet} needs to go to the vet every {month}.",
    "The user speaks {language} with {person} and {language2} at work.",
    "The user's commute to {company} takes {years} minutes by bike.",
    "The user cooked {food} for {name}'s {event}.",
    "{name} recommended a {genre} book about {city}.",
    "The user shares a {colour} {car} with {person}.",
    "The user's goal for {month} is to finish {project}.",
    "The user does not like {drink} and orders {drink2} instead.",
    "The user moved from {city} to {city2} in {month}.",
    "The user trains for {sport} {time} with {name}.",
)

QUESTIONS: tuple[str, ...] = (
    "Which city does {person} live in?",
    "Is anyone in the family allergic to {allergy}?",
    "What does the user usually do {time}?",
    "Who should I talk to about {project}?",
    "Does the user have a {pet}?",
    "When is the {event}?",
    "What car does the user drive, is it a {car}?",
    "How long has the user worked as a {job}?",
    "Would the user like {food} for dinner?",
    "Which sport does the user play with {person}?",
    "Is the user studying {language}?",
    "How much money is set aside for {project}?",
    "What music does the user enjoy while playing the {instrument}?",
    "Any travel plans for {city} this year?",
    "What does {name} from {company} do for the user?",
    "What does the user drink {time}?",
    "Which app does the user use for {project}?",
    "What is {person}'s job?",
    "What are the user's hobbies besides {hobby}?",
    "Where did the user meet {name}?",
    "What should I cook for {name}?",
    "What deadline is coming up in {month}?",
    "Which books does the user read, like {genre}?",
    "Where is the user's {event} taking place?",
)


def _slot(slot: str, rng: random.Random) -> str:
    if slot == "num":
        return str(rng.randint(20, 5000))
    if slot == "years":
        return str(rng.randint(2, 40))
    if slot == "date":
        return str(rng.randint(1, 28))
    return rng.choice(VOCAB[slot.rstrip("0123456789")])


def _fill(template: str, rng: random.Random) -> str:
    values: dict[str, str] = {}
    for _, slot, _, _ in string.Formatter().parse(template):
        if slot and slot not in values:
            values[slot] = _slot(slot, rng)
    sentence = template.format(**values)
    return sentence[0].upper() + sentence[1:]


def sentences(templates: Sequence[str], count: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``count`` distinct sentences from ``templates`` (deterministic for ``seed``), none of them in ``exclude``."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    for _ in range(count * 50):
        if len(out) == count:
            return out
        sentence = _fill(rng.choice(templates), rng)
        if sentence not in seen and sentence not in exclude:
            seen.add(sentence)
            out.append(sentence)
    if len(out) == count:
        return out
    raise RuntimeError(f"the vocabulary gives only {len(out)} distinct sentences, {count} wanted")


def corpus(n: int, noise: int, noise_tenants: int, seed: int) -> list[list[str]]:
    """The texts of each tenant: the benchmarked tenant first, then the noise tenants (``noise`` split evenly)."""
    shares = [noise // noise_tenants + (1 if i < noise % noise_tenants else 0) for i in range(noise_tenants)]
    return [sentences(TEMPLATES, count, seed * 1000 + i) for i, count in enumerate([n, *shares])]


# --- embeddings (cached on disk) ---------------------------------------------------------------------------------


@dataclass
class Embedded:
    """Vectors of a list of texts and how long computing them took (in this run, or when cached)."""

    vectors: Matrix
    seconds: float
    cached: bool
    computed_at: str

    @property
    def rate(self) -> float:
        """Texts per second."""
        return len(self.vectors) / self.seconds


def make_embedder(name: str) -> Embedder:
    """The embedder ``name`` (``minilm``: 2 threads, batches of 64, as the worker runs it)."""
    return MiniLMEmbedder(threads=2) if name == "minilm" else HashEmbedder()


async def warm(embedder: Embedder) -> None:
    """Load the model before anything is timed."""
    if isinstance(embedder, MiniLMEmbedder):
        await embedder.warm()


async def embed_matrix(embedder: Embedder, texts: Sequence[str], *, chunk: int = 8192, label: str = "") -> Matrix:
    """Vectors of ``texts`` as a float32 matrix, embedded ``chunk`` texts at a time (progress on stderr)."""
    out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    began = time.perf_counter()
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        out[start : start + len(part)] = np.asarray(await embedder.embed(part), dtype=np.float32)
        if label and len(texts) > chunk:
            done, elapsed = start + len(part), time.perf_counter() - began
            eta = elapsed / done * (len(texts) - done)
            print(
                f"  embedding {label}: {done:,}/{len(texts):,} ({done / elapsed:.0f}/s, {eta:.0f} s left)",
                file=sys.stderr,
            )
    return out


def cache_dir() -> Path:
    """``$AIMPACT_HOME/bench-cache`` (``.aimpact/bench-cache`` by default, git-ignored)."""
    return (Path(os.environ.get("AIMPACT_HOME") or ".aimpact") / "bench-cache").resolve()


def _cache_stem(embedder: Embedder, texts: Sequence[str], label: str) -> Path:
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    return cache_dir() / f"{embedder.name}-{label}-{len(texts)}-{digest}"


def _read_cache(stem: Path) -> Embedded | None:
    vectors_path, meta_path = Path(f"{stem}.npy"), Path(f"{stem}.json")
    if not (vectors_path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    return Embedded(np.load(vectors_path), meta["seconds"], True, meta["computed_at"])


def _write_cache(stem: Path, embedded: Embedded) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{stem}.partial.npy")
    np.save(partial, embedded.vectors)
    partial.replace(f"{stem}.npy")
    meta = {"texts": len(embedded.vectors), "seconds": embedded.seconds, "computed_at": embedded.computed_at}
    Path(f"{stem}.json").write_text(json.dumps(meta))


async def cached_embeddings(embedder: Embedder, texts: Sequence[str], label: str) -> Embedded:
    """Vectors of ``texts``, from the cache when the same texts were embedded before by the same embedder."""
    stem = _cache_stem(embedder, texts, label)
    cached = _read_cache(stem)
    if cached is not None:
        return cached
    began = time.perf_counter()
    vectors = await embed_matrix(embedder, texts, label=label)
    seconds = time.perf_counter() - began
    embedded = Embedded(vectors, seconds, False, datetime.now(UTC).isoformat(timespec="seconds"))
    _write_cache(stem, embedded)
    return embedded


async def single_latencies(embedder: Embedder, texts: Sequence[str]) -> list[float]:
    """Seconds to embed each text alone (what a search request pays before querying)."""
    latencies = []
    for text in texts:
        began = time.perf_counter()
        await embedder.embed([text])
        latencies.append(time.perf_counter() - began)
    return latencies


# --- the scratch database --------------------------------------------------------------------------------------


@contextmanager
def scratch_postgres(root: Path) -> Iterator[Path]:
    """A fresh embedded PostgreSQL in ``root`` (unix socket only), as a foreground child; yields its data dir."""
    pgdata = root / "pgdata"
    child = ManagedProcess(postgres.spec(pgdata, root / "postgres.log", postgres.prepare(pgdata)))
    child.start()
    try:
        child.wait_healthy()
        postgres.ensure_database(pgdata)
        yield pgdata
    finally:
        child.stop()


def database_url(pgdata: Path) -> str:
    """SQLAlchemy URL of the scratch database (over its unix socket)."""
    return f"postgresql+psycopg://postgres@/{postgres.DATABASE}?host={pgdata}&port={postgres.SOCKET_PORT}"


def connect(pgdata: Path) -> psycopg.Connection[Any]:
    """A plain psycopg connection to the scratch database, with pgvector types registered."""
    conn = psycopg.connect(host=str(pgdata), port=postgres.SOCKET_PORT, user="postgres", dbname=postgres.DATABASE)
    register_vector(conn)
    return conn


def server_info(pgdata: Path) -> str:
    """PostgreSQL and pgvector versions and the settings that matter here."""
    with connect(pgdata) as conn:
        version = conn.execute("show server_version").fetchone()
        vector = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
        buffers = conn.execute("show shared_buffers").fetchone()
    assert version is not None
    assert vector is not None
    assert buffers is not None
    return f"PostgreSQL {version[0]}, pgvector {vector[0]}, shared_buffers {buffers[0]}"


async def create_tenants(engine: AsyncEngine, count: int) -> list[str]:
    """``count`` tenants created through ``core.provisioning.create_tenant``; their ids."""
    sessions = make_sessionmaker(engine)
    ids = []
    async with sessions() as session:
        for i in range(count):
            ids.append((await create_tenant(session, f"bench-memory-{i}")).id)
    return ids


# --- bulk load -------------------------------------------------------------------------------------------------

COPY_SQL = (
    "copy memory (id, tenant_id, subject, text, metadata, embedding, embedder, status, importance, use_count)"
    " from stdin (format binary)"
)
COPY_TYPES = ["varchar", "varchar", "varchar", "varchar", "jsonb", "vector", "varchar", "varchar", "float8", "int4"]
Row = tuple[str, str, str, str, dict[str, Any], Matrix, str, str, float, int]


@dataclass
class LoadFigures:
    """Timings of the bulk load."""

    rows: int
    copy_s: float
    index_s: float
    analyze_s: float
    index_def: str = ""


def load_rows(
    groups: list[list[str]], tenants: list[str], vectors: Matrix, embedder: str
) -> tuple[list[Row], list[str]]:
    """COPY rows (status ``ready``) for every tenant's texts, and the ids of the first tenant's rows."""
    rows: list[Row] = []
    for tenant, texts in zip(tenants, groups, strict=False):
        for text in texts:
            rows.append((new_id("mem"), tenant, SUBJECT, text, {}, vectors[len(rows)], embedder, "ready", 0.5, 0))
    return rows, [row[0] for row in rows[: len(groups[0])]]


def bulk_load(pgdata: Path, rows: Sequence[Row]) -> LoadFigures:
    """Drop the HNSW index, COPY ``rows``, rebuild the index as the migration defined it, ANALYZE."""
    with connect(pgdata) as conn:
        found = conn.execute("select indexdef from pg_indexes where indexname = %s", (HNSW_INDEX,)).fetchone()
        if found is None:
            raise RuntimeError(f"{HNSW_INDEX} is missing: did the migrations run?")
        conn.execute(f"drop index {HNSW_INDEX}")
        conn.commit()
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        copy_s = time.perf_counter() - began
        conn.execute(f"set maintenance_work_mem = '{BUILD_MEMORY}'")
        began = time.perf_counter()
        conn.execute(found[0])
        conn.commit()
        index_s = time.perf_counter() - began
        began = time.perf_counter()
        conn.execute("analyze memory")
        conn.commit()
        analyze_s = time.perf_counter() - began
    return LoadFigures(len(rows), copy_s, index_s, analyze_s, found[0])


def search_plan(pgdata: Path, tenant: str, embedder: str, vector: Matrix) -> str:
    """The scan node the planner picks for the search query (the HNSW index, hopefully)."""
    with connect(pgdata) as conn:
        conn.execute(f"set hnsw.ef_search = {EF_SEARCH}")
        conn.execute("set hnsw.iterative_scan = relaxed_order")
        rows = conn.execute(
            "explain select id from memory where tenant_id = %s and status = 'ready' and embedder = %s"
            " and subject = %s order by embedding <=> %s limit %s",
            (tenant, embedder, SUBJECT, vector, K),
        ).fetchall()
    scans = [str(r[0]).strip(" ->") for r in rows if "Scan" in str(r[0])]
    return scans[0].split("  (")[0] if scans else "?"


# --- search and recall -----------------------------------------------------------------------------------------


@dataclass
class SearchFigures:
    """Latencies and results of one pass of searches."""

    label: str
    ef_search: int | None
    latencies: list[float]
    results: list[list[str]]
    recall: float = 0.0
    foreign: int = 0

    def pct(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in milliseconds (nearest rank)."""
        return percentile(self.latencies, q)

    def meets(self) -> bool:
        """Whether both targets are met."""
        return self.pct(0.95) <= TARGET_P95_MS and self.recall >= TARGET_RECALL


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def searches(
    store: MemoryStore, tenant: str, embedder: str, queries: Matrix, *, ef_search: int | None
) -> SearchFigures:
    """One search per query, one at a time: HNSW at ``ef_search``, or the exact scan when it is ``None``."""
    latencies, results = [], []
    for row in queries:
        vector = row.tolist()
        began = time.perf_counter()
        if ef_search is None:
            hits = await store.exact_search(tenant, SUBJECT, vector, embedder=embedder, k=K)
        else:
            hits = await store.search(tenant, SUBJECT, vector, embedder=embedder, k=K, ef_search=ef_search, touch=False)
        latencies.append(time.perf_counter() - began)
        results.append([h.id for h in hits])
    label = "exact scan (exact_search)" if ef_search is None else f"HNSW ef_search={ef_search}"
    return SearchFigures(label, ef_search, latencies, results)


@dataclass
class Truth:
    """Exact nearest neighbours of the queries among the benchmarked tenant's vectors."""

    ids: dict[str, int]
    vectors: Matrix
    queries: Matrix
    kth: npt.NDArray[np.float32]

    @classmethod
    def compute(cls, ids: Sequence[str], vectors: Matrix, queries: Matrix) -> Truth:
        """The k-th smallest cosine distance per query (vectors are unit length: distance = 1 - dot)."""
        kth = np.empty(len(queries), dtype=np.float32)
        for start in range(0, len(queries), 256):
            sims = queries[start : start + 256] @ vectors.T
            kth[start : start + len(sims)] = 1.0 - np.partition(sims, -K, axis=1)[:, -K]
        return cls({memory_id: i for i, memory_id in enumerate(ids)}, vectors, queries, kth)

    def score(self, figures: SearchFigures) -> None:
        """Set ``recall`` (mean recall@k, ties tolerated) and ``foreign`` (hits outside the tenant) of ``figures``."""
        total, foreign = 0.0, 0
        for q, hit_ids in enumerate(figures.results):
            rows = [self.ids.get(memory_id) for memory_id in hit_ids]
            foreign += sum(row is None for row in rows)
            good = [
                r for r in rows if r is not None and 1.0 - float(self.queries[q] @ self.vectors[r]) <= self.kth[q] + TIE
            ]
            total += len(good) / K
        figures.recall = total / len(figures.results)
        figures.foreign = foreign


async def ef_sweep(
    store: MemoryStore, tenant: str, embedder: str, queries: Matrix, truth: Truth, values: Sequence[int]
) -> list[SearchFigures]:
    """Searches at ``EF_SEARCH`` first, then each of ``values``, doubling past them while recall misses its target."""
    wanted = [EF_SEARCH, *sorted(v for v in set(values) if v != EF_SEARCH)]
    done: list[SearchFigures] = []
    while wanted:
        ef = wanted.pop(0)
        figures = await searches(store, tenant, embedder, queries, ef_search=ef)
        truth.score(figures)
        done.append(figures)
        print(f"  {figures.label}: recall@10 {figures.recall:.3f}, p95 {figures.pct(0.95):.1f} ms", file=sys.stderr)
        best = max(f.ef_search or 0 for f in done)
        if not wanted and max(f.recall for f in done) < TARGET_RECALL and best < MAX_EF:
            wanted.append(best * 2)
    return done


# --- the product ingest path -----------------------------------------------------------------------------------


async def product_ingest(
    store: MemoryStore, embedder: Embedder, tenant: str, texts: Sequence[str], vectors: Matrix | None
) -> float:
    """Seconds to store ``texts`` as the product does, ``EMBED_BATCH`` at a time, into the indexed table.

    With ``vectors``: ``add`` then ``set_embeddings`` (no embedding time). Without: ``add``, then what the
    ``memory.embed`` activity does (read the pending texts, embed them, ``set_embeddings``).
    """
    began = time.perf_counter()
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        ids = await store.add(tenant, [NewMemory(id=new_id("mem"), subject=SUBJECT, text=t) for t in batch])
        if vectors is not None:
            pairs = list(zip(ids, vectors[start : start + len(batch)].tolist(), strict=True))
        else:
            pending = await store.texts(tenant, ids)
            embedded = await embedder.embed([text for _, text in pending])
            pairs = [(memory_id, v) for (memory_id, _), v in zip(pending, embedded, strict=True)]
        if await store.set_embeddings(tenant, embedder.name, pairs) != len(batch):
            raise RuntimeError("set_embeddings changed fewer rows than stored")
    return time.perf_counter() - began


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Every figure of one run."""

    server: str
    plan: str
    memories: Embedded
    queries: Embedded
    sample_rate: float
    single_embed: list[float]
    load: LoadFigures
    ingest_rows: int
    ingest_s: float
    ingest_embed_s: float
    sweep: list[SearchFigures]
    exact: SearchFigures
    hnsw_vs_exact: float


async def measure(args: argparse.Namespace) -> Report:
    """Generate, embed, load, search and ingest; return the figures."""
    embedder = make_embedder(args.embedder)
    groups = corpus(args.n, args.noise, args.noise_tenants, args.seed)
    texts = [t for group in groups for t in group]
    questions = sentences(QUESTIONS, args.searches, args.seed + 1, exclude=frozenset(texts))
    samples = sentences(TEMPLATES, 2 * args.sample, args.seed + 2)
    await warm(embedder)
    memories = await cached_embeddings(embedder, texts, f"memories-seed{args.seed}")
    queries = await cached_embeddings(embedder, questions, f"queries-seed{args.seed}")
    began = time.perf_counter()
    sample_vectors = await embed_matrix(embedder, samples[: args.sample])
    sample_rate = args.sample / (time.perf_counter() - began)
    single = await single_latencies(embedder, questions[:50])

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-memory-") as root, scratch_postgres(Path(root)) as pgdata:
        url = database_url(pgdata)
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url, pool_size=4)
        try:
            tenants = await create_tenants(engine, 2 + args.noise_tenants)
            rows, bench_ids = load_rows(groups, tenants, memories.vectors, embedder.name)
            print(f"  loading {len(rows):,} rows", file=sys.stderr)
            load = await asyncio.to_thread(bulk_load, pgdata, rows)
            del rows
            store = MemoryStore(engine)
            truth = Truth.compute(bench_ids, memories.vectors[: args.n], queries.vectors)
            await searches(store, tenants[0], embedder.name, queries.vectors[:20], ef_search=EF_SEARCH)  # warm-up
            sweep = await ef_sweep(store, tenants[0], embedder.name, queries.vectors, truth, args.ef)
            exact = await searches(store, tenants[0], embedder.name, queries.vectors[: args.exact], ef_search=None)
            truth.score(exact)
            hnsw_vs_exact = _overlap(sweep[0].results[: args.exact], exact.results)
            ingest_tenant = tenants[-1]
            ingest_s = await product_ingest(store, embedder, ingest_tenant, samples[: args.sample], sample_vectors)
            ingest_embed_s = await product_ingest(store, embedder, ingest_tenant, samples[args.sample :], None)
            plan = await asyncio.to_thread(search_plan, pgdata, tenants[0], embedder.name, queries.vectors[0])
            server = await asyncio.to_thread(server_info, pgdata)
        finally:
            await engine.dispose()
    return Report(
        server=server,
        plan=plan,
        memories=memories,
        queries=queries,
        sample_rate=sample_rate,
        single_embed=single,
        load=load,
        ingest_rows=args.sample,
        ingest_s=ingest_s,
        ingest_embed_s=ingest_embed_s,
        sweep=sweep,
        exact=exact,
        hnsw_vs_exact=hnsw_vs_exact,
    )


def _overlap(found: list[list[str]], reference: list[list[str]]) -> float:
    """Mean share of each reference list found (plain id overlap, no tie tolerance)."""
    return sum(len(set(f) & set(r)) / max(1, len(r)) for f, r in zip(found, reference, strict=True)) / len(reference)


# --- output ----------------------------------------------------------------------------------------------------


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"


def _source(e: Embedded) -> str:
    return f"cached, computed {e.computed_at}" if e.cached else "computed in this run"


def _ingest_lines(args: argparse.Namespace, r: Report) -> list[tuple[str, str, str]]:
    load, rows = r.load, r.ingest_rows
    return [
        (
            f"embedding {len(r.memories.vectors):,} memories, batched",
            f"{r.memories.rate:,.0f} texts/s",
            f"{r.memories.seconds:,.0f} s, {_source(r.memories)}",
        ),
        (f"embedding {args.sample:,} fresh texts, batched", f"{r.sample_rate:,.0f} texts/s", "this run"),
        (
            f"embedding {len(r.queries.vectors):,} queries, batched",
            f"{r.queries.rate:,.0f} texts/s",
            _source(r.queries),
        ),
        (
            "bulk COPY of precomputed vectors, HNSW index dropped",
            f"{load.rows / load.copy_s:,.0f} rows/s",
            f"{load.rows:,} rows in {load.copy_s:.1f} s",
        ),
        ("HNSW index build after the load", f"{load.index_s:.1f} s", f"{load.rows / load.index_s:,.0f} rows/s"),
        ("ANALYZE memory", f"{load.analyze_s:.2f} s", ""),
        ("bulk load incl. index build (no embedding)", f"{load.rows / (load.copy_s + load.index_s):,.0f} rows/s", ""),
        (
            f"product path: add + set_embeddings, {EMBED_BATCH}/batch, indexed",
            f"{rows / r.ingest_s:,.0f} rows/s",
            f"{rows:,} rows in {r.ingest_s:.1f} s, table holds {load.rows:,}+",
        ),
        (
            "product path: add + embed + set_embeddings (with embedding)",
            f"{rows / r.ingest_embed_s:,.0f} texts/s",
            f"{rows:,} texts in {r.ingest_embed_s:.1f} s",
        ),
    ]


def _latency_row(name: str, latencies: Sequence[float], recall: float | None) -> str:
    quantiles = " ".join(f"{percentile(latencies, q):>7.2f}" for q in (0.5, 0.95, 0.99))
    shown = "" if recall is None else f"{recall:>10.3f}"
    return f"  {name:<60} {len(latencies):>5} {quantiles} {shown}"


def print_report(args: argparse.Namespace, r: Report) -> None:
    """The figures as readable tables, with the targets."""
    main = r.sweep[0]
    print(
        f"\nmemory bench: {args.n:,} memories (1 tenant, subject {SUBJECT!r}) + {args.noise:,} noise "
        f"({args.noise_tenants} tenants, same subject); embedder {args.embedder}; {args.searches:,} searches, k={K}"
    )
    print(f"{r.server}, fsync on; index as migrated: {r.load.index_def}")
    print(f"index built with maintenance_work_mem {BUILD_MEMORY}; search plan: {r.plan}")

    print(f"\n{'ingest':<62} {'figure':>16}   detail")
    for name, figure, detail in _ingest_lines(args, r):
        print(f"  {name:<60} {figure:>16}   {detail}")

    header = f"{'search (tenant + subject filter, k=10, one at a time)':<62} {'n':>5}"
    print(f"\n{header} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'recall@10':>10}")
    print(
        _latency_row(f"MemoryStore.search, HNSW, ef_search={main.ef_search} (EF_SEARCH)", main.latencies, main.recall)
    )
    print(_latency_row("baseline: MemoryStore.exact_search (sequential scan)", r.exact.latencies, r.exact.recall))
    print(_latency_row("query embedding alone, one text at a time", r.single_embed, None))
    p95_met, recall_met = main.pct(0.95) <= TARGET_P95_MS, main.recall >= TARGET_RECALL
    print(
        f"  targets: search p95 <= {TARGET_P95_MS:g} ms {_ok(p95_met)}; recall@10 >= {TARGET_RECALL} {_ok(recall_met)}"
    )
    print(
        f"  HNSW p50 is {r.exact.pct(0.5) / main.pct(0.5):.0f}x faster than the exact scan; on those "
        f"{len(r.exact.latencies)} queries HNSW returns {r.hnsw_vs_exact:.3f} of exact_search's ids"
    )
    print(f"  hits from other tenants over all HNSW searches: {sum(f.foreign for f in r.sweep)} (must be 0)")

    print(f"\n{'ef_search':>11} {'recall@10':>10} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  both targets")
    for f in sorted(r.sweep, key=lambda f: f.ef_search or 0):
        quantiles = " ".join(f"{f.pct(q):>7.2f}" for q in (0.5, 0.95, 0.99))
        print(f"  {f.ef_search:>9} {f.recall:>10.3f} {quantiles}  {_ok(f.meets())}")
    meeting = sorted(f.ef_search or 0 for f in r.sweep if f.meets())
    verdict = f"smallest ef_search meeting both targets: {meeting[0]}" if meeting else "no ef_search tried meets both"
    print(f"{verdict} (EF_SEARCH is {EF_SEARCH})")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="memories of the benchmarked tenant and subject")
    parser.add_argument("--noise", type=int, default=100_000, help="memories of the other tenants, same subject")
    parser.add_argument("--noise-tenants", type=int, default=10)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--exact", type=int, default=100, help="queries also run through the exact scan")
    parser.add_argument("--sample", type=int, default=2000, help="texts per product-path ingest sample")
    parser.add_argument("--embedder", choices=("minilm", "hash"), default="minilm")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ef",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[40, 200, 400],
        help="ef_search values tried besides EF_SEARCH (comma-separated)",
    )
    return parser.parse_args()


def main() -> None:
    """Run the benchmark and print its figures."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    args = parse_args()
    began = time.perf_counter()
    report = asyncio.run(measure(args))
    print_report(args, report)
    print(f"\nwall time {time.perf_counter() - began:,.0f} s")


if __name__ == "__main__":
    main()
