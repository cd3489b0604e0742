"""The offline part of ``bench/optimizer.py``: the optimizer's regret against random search and uniform allocation.

Each seed is a simulated world (``simulated/world.py``, its own seed) serving Chat
Completions on a loopback port, and a dataset of that seed's question bank. The optimizer is
the platform's: an embedded stack (``aimpact up``: Temporal dev server, PostgreSQL, Redis, the
optimizer worker) started by the bench; per seed a fresh tenant whose agent's model is the
world, the dataset uploaded with ``POST /v1/agents/{id}/datasets`` and an ``OptimizerWorkflow``
started with ``POST /v1/agents/{id}/optimizer/runs`` and awaited. The baselines
(``bench.offline_methods``) run in this process on the same world, the same dataset splits,
the same budget and the same test gate; they and the check that their scores are the
platform's read what the run recorded (its candidates' versions, scores and ``n``).

Regret is the hidden best minus the hidden quality (``SimWorld.hidden_quality``) of the version
a method ends with: its pick when promoted, else the baseline. The hidden best is the best
prompt the world can express (``offline_methods.world_best``), the same for every method;
"own regret" measures each method against the best of the texts it tried (the baseline
included) instead. A/A seeds run the same on worlds where every prompt is equally good: any
promotion there is false.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import BENCH_ENV
from bench.offline_methods import (
    Example,
    Ledger,
    Outcome,
    Rules,
    Splits,
    clopper_pearson,
    interval,
    random_search,
    uniform_allocation,
    world_best,
)
from core.db.engine import make_engine, make_sessionmaker
from core.optimizer.run_store import run_seed
from core.optimizer.stats import paired_comparison
from core.provisioning import create_tenant, issue_api_key
from core.settings import Settings
from simulated.world import SimWorld, question_bank
from workers.embedded.stack import StackProcess

INSTRUCTIONS = "Answer the question."
MODEL = "sim-base"
METHODS = ("optimizer", "uniform", "random")
FINAL = ("completed", "failed", "cancelled")
AA_SEED_BASE = 100_000
"""A/A worlds' seeds start here, apart from the others'."""


@dataclass(frozen=True)
class Scored:
    """What a method ended with on one seed, in hidden quality."""

    final: float
    picked: float | None
    own_best: float
    promoted: bool
    evals: int


@dataclass(frozen=True)
class SeedResult:
    """One seed: the baseline's hidden quality, each method's result, and the in-process check."""

    seed: int
    aa: bool
    baseline: float
    methods: dict[str, Scored]
    matched: int
    checked: int
    seconds: float


@dataclass(frozen=True)
class Setup:
    """The bench's parameters of one invocation."""

    examples: int
    max_evals: int
    strategies: list[str]
    run_timeout_s: float


class Api:
    """One seed's tenant through the public HTTP API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    async def splits(self, dataset_id: str) -> Splits:
        """The dataset's examples by split, in position order (paged)."""
        by_split: dict[str, list[Example]] = {}
        for split in ("train", "validation", "test"):
            rows: list[Example] = []
            params: dict[str, Any] = {"split": split, "limit": 200}
            for _ in range(1000):
                page = await self.call("GET", f"/v1/datasets/{dataset_id}/examples", params=params)
                rows += [Example(e["id"], e["input"], e["expected"]) for e in page["items"]]
                if not page["next_cursor"]:
                    break
                params["cursor"] = page["next_cursor"]
            by_split[split] = rows
        return Splits(by_split["train"], by_split["validation"], by_split["test"])

    async def finished(self, run_id: str, timeout_s: float) -> dict[str, Any]:
        """The optimizer run once final (polled every half second, ``timeout_s`` at most)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run: dict[str, Any] = await self.call("GET", f"/v1/optimizer/runs/{run_id}")
            if run["status"] in FINAL:
                return run
            await asyncio.sleep(0.5)
        raise RuntimeError(f"optimizer run {run_id} not final after {timeout_s:.0f} s")

    async def instructions(self, agent_id: str, version: int) -> str:
        found: dict[str, Any] = await self.call("GET", f"/v1/agents/{agent_id}/versions/{version}")
        return str(found["instructions"])


async def tenant_key(engine: AsyncEngine) -> str:
    """A fresh tenant whose models may be on loopback, and an owner API key of it."""
    async with make_sessionmaker(engine)() as session:
        tenant = await create_tenant(session, f"bench-opt-{uuid.uuid4().hex[:8]}")
        tenant.egress_allowlist = ["127.0.0.1"]
        session.add(tenant)
        await session.commit()
        _, minted = await issue_api_key(session, tenant.id, name="owner", role="owner")
    return minted.key


async def run_seed_on_stack(api_url: str, engine: AsyncEngine, seed: int, aa: bool, settings: Setup) -> SeedResult:
    """One seed: the optimizer run on the stack, then the baselines and the check in-process."""
    began = time.perf_counter()
    world = SimWorld(seed=seed, aa=aa)
    key = await tenant_key(engine)
    headers = {"Authorization": f"Bearer {key}"}
    with world.serve() as server:
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as http:
            api = Api(http)
            await api.call("POST", "/v1/secrets", 201, json={"name": "SIM_KEY", "value": "sk-sim-0123456789"})
            model = {"provider": "openai", "name": MODEL, "base_url": f"{server.url}/v1", "api_key_secret": "SIM_KEY"}
            body = {"name": "quiz", "instructions": INSTRUCTIONS, "tools": [], "model": model}
            agent = await api.call("POST", "/v1/agents", 201, json=body)
            bank = question_bank(seed, settings.examples)
            examples = [{"input": e["input"], "expected": e["expected"]} for e in bank]
            path = f"/v1/agents/{agent['id']}/datasets"
            dataset = await api.call("POST", path, 201, json={"name": "quiz", "examples": examples})
            splits = await api.splits(dataset["id"])
            body = {
                "dataset_id": dataset["id"],
                "strategies": settings.strategies,
                "budget": {"max_evals": settings.max_evals},
            }
            started = await api.call("POST", f"/v1/agents/{agent['id']}/optimizer/runs", 202, json=body)
            run = await api.finished(started["id"], settings.run_timeout_s)
            if run["status"] != "completed":
                raise RuntimeError(f"seed {seed}: optimizer run {run['status']}: {run.get('error')}")
            texts = {c["version"]: await api.instructions(agent["id"], c["version"]) for c in run["candidates"]}
    return _compare(world, seed, aa, run, texts, splits, settings, time.perf_counter() - began)


def _compare(
    world: SimWorld,
    seed: int,
    aa: bool,
    run: dict[str, Any],
    texts: dict[int, str],
    splits: Splits,
    settings: Setup,
    seconds: float,
) -> SeedResult:
    """The baselines on the run's world and dataset, every method in hidden quality, and the check."""
    platform = Settings()
    seed_of_run = run_seed(run["dataset_hash"], run["baseline_version"])
    rules = Rules(settings.max_evals, platform.optimizer_min_effect, seed_of_run)
    baseline = texts[run["baseline_version"]]
    proposed = [texts[c["version"]] for c in run["candidates"][1:]]
    winner = run["winner"]
    optimizer = Outcome(
        tuple(proposed),
        texts[winner] if winner is not None else None,
        texts[winner] if run["promoted"] else baseline,
        run["promoted"],
        run["budget"]["evals_used"],
    )
    check = Ledger(world, MODEL, budget=10**9)
    matched, checked = _check(check, run, texts, splits, rules)
    count = len(settings.strategies) * platform.optimizer_candidates
    outcomes = {
        "optimizer": optimizer,
        "uniform": uniform_allocation(Ledger(world, MODEL, settings.max_evals), baseline, proposed, splits, rules),
        "random": random_search(
            Ledger(world, MODEL, settings.max_evals), baseline, splits, rules, count, random.Random(f"random:{seed}")
        ),
    }

    def quality(text: str) -> float:
        return world.hidden_quality(text, model=MODEL)

    base = quality(baseline)
    methods = {
        name: Scored(
            final=quality(o.final),
            picked=quality(o.picked) if o.picked is not None else None,
            own_best=max([base, *(quality(t) for t in o.candidates)]),
            promoted=o.promoted,
            evals=o.evals,
        )
        for name, o in outcomes.items()
    }
    return SeedResult(seed, aa, base, methods, matched, checked, seconds)


def _check(ledger: Ledger, run: dict[str, Any], texts: dict[int, str], splits: Splits, rules: Rules) -> tuple[int, int]:
    """How many of the run's recorded validation scores, and its test decision, the in-process scores reproduce."""
    matched = checked = 0
    for candidate in run["candidates"]:
        if candidate["n"]:
            checked += 1
            mean = ledger.mean(texts[candidate["version"]], splits.validation[: candidate["n"]])
            matched += abs(mean - candidate["score"]) < 1e-9
    if run["winner"] is not None:
        checked += 1
        test = splits.test[: rules.test_size(splits)]
        base = ledger.evaluate(texts[run["baseline_version"]], test)
        chosen = ledger.evaluate(texts[run["winner"]], test)
        comparison = paired_comparison(chosen, base, min_effect=rules.min_effect, seed=rules.seed, split="test")
        matched += comparison.reason in run["reason"] and comparison.significant == run["promoted"]
    return matched, checked


async def run_seeds(
    api_url: str, engine: AsyncEngine, seeds: list[tuple[int, bool]], settings: Setup, parallel: int
) -> list[SeedResult]:
    """Every seed, ``parallel`` at a time, each line of progress as a seed ends."""
    slots = asyncio.Semaphore(parallel)

    async def one(seed: int, aa: bool) -> SeedResult:
        async with slots:
            result = await run_seed_on_stack(api_url, engine, seed, aa, settings)
        opt = result.methods["optimizer"]
        print(
            f"  {'A/A ' if aa else ''}seed {seed}: optimizer {'promoted' if opt.promoted else 'kept the baseline'},"
            f" hidden quality {result.baseline:.3f} -> {opt.final:.3f}; {result.seconds:.0f} s",
            flush=True,
        )
        return result

    return list(await asyncio.gather(*(one(seed, aa) for seed, aa in seeds)))


def _shares(results: list[SeedResult], name: str) -> tuple[int, int, int]:
    """Seeds in which ``name`` ended above the baseline, below it, and promoted."""
    scored = [(r.methods[name], r.baseline) for r in results]
    return (
        sum(1 for s, base in scored if s.final > base + 1e-12),
        sum(1 for s, base in scored if s.final < base - 1e-12),
        sum(1 for s, _ in scored if s.promoted),
    )


def regret_table(results: list[SeedResult], best: float) -> None:
    """Each method's regret with its interval over seeds, its difference to the optimizer's, and its shares."""
    n = len(results)
    regrets = {name: [best - r.methods[name].final for r in results] for name in METHODS}
    print(
        f"\n{'method':<10} {'regret [95% CI]':>20} {'minus optimizer [95% CI]':>26} {'pick regret':>12}"
        f" {'own regret':>11} {'improved':>9} {'worse':>6} {'promoted':>9} {'evals':>6}"
    )
    for name, regret in regrets.items():
        differences = [a - b for a, b in zip(regret, regrets["optimizer"], strict=True)]
        delta = "" if name == "optimizer" else _ci(interval(differences))
        pick = sum(best - _picked(r, name) for r in results) / n
        own = sum(r.methods[name].own_best - r.methods[name].final for r in results) / n
        evals = sum(r.methods[name].evals for r in results) / n
        improved, worse, promoted = _shares(results, name)
        print(
            f"{name:<10} {_ci(interval(regret)):>20} {delta:>26} {pick:>12.3f} {own:>11.3f}"
            f" {f'{improved}/{n}':>9} {f'{worse}/{n}':>6} {f'{promoted}/{n}':>9} {evals:>6.0f}"
        )
    print(
        "regret: hidden best minus the hidden quality of the version the method ends with (its pick when promoted,"
        " else the baseline); pick regret: of its pick on validation, promoted or not; own regret: the best of the"
        " texts it tried (baseline included) minus what it ends with; improved/worse: seeds ending above/below the"
        " baseline; evals: mean evaluations spent of the budget"
    )
    print("target: the optimizer's regret below each baseline's ('minus optimizer' above 0)")


def aa_table(results: list[SeedResult]) -> None:
    """Each method's share of A/A seeds with a promotion (all false) and its exact interval."""
    n = len(results)
    print(f"\nA/A (every prompt equally good), {n} seeds: seeds with a (false) promotion")
    for name in METHODS:
        k = sum(1 for r in results if r.methods[name].promoted)
        lo, hi = clopper_pearson(k, n)
        label = "optimizer" if name == "optimizer" else f"{name} (in-process)"
        print(f"{label:<24} {k:>3}/{n:<4} = {k / n:.3f}  [{lo:.3f}, {hi:.3f}] (Clopper-Pearson 95%)")
    print("target: the optimizer's <= 0.05")


def report(results: list[SeedResult], best_quality: float, best_text: str) -> None:
    """The regret table, the A/A table and the check, with the targets."""
    main = [r for r in results if not r.aa]
    if main:
        print(f"\nhidden best {best_quality:.3f}: {best_text}")
        print(f"the baseline {INSTRUCTIONS!r}: {main[0].baseline:.3f} (the hidden function is the same in every seed)")
        regret_table(main, best_quality)
    if aa := [r for r in results if r.aa]:
        aa_table(aa)
    matched, checked = sum(r.matched for r in results), sum(r.checked for r in results)
    print(
        f"\nin-process scores reproduce the platform's: {matched}/{checked} recorded candidate validation scores and"
        " test decisions"
    )


def _picked(result: SeedResult, name: str) -> float:
    """The hidden quality of the method's pick on validation (the baseline when it picked nothing)."""
    picked = result.methods[name].picked
    return result.baseline if picked is None else picked


def _ci(value: Any) -> str:
    return f"{value.mean:.3f} [{value.lo:.3f}, {value.hi:.3f}]"


async def offline(seeds: int, aa_seeds: int, settings: Setup, parallel: int) -> list[SeedResult]:
    """Start a stack, run every seed on it, stop it; print as it goes and at the end."""
    best = world_best(SimWorld(), INSTRUCTIONS, MODEL)
    phrases = " + ".join(best.phrases) or "no phrase"
    demos = ", ".join(f"{k} {s}" for k, s in zip(best.demos, ("math", "geo", "words"), strict=True))
    best_text = (
        f"the best prompt the world can express on {MODEL} (the baseline's instructions with any subset of the six"
        f" feature phrases and 0 to 3 right demos per slice): {phrases}, demos {demos}"
    )
    order = [(s, False) for s in range(1, seeds + 1)] + [(AA_SEED_BASE + s, True) for s in range(1, aa_seeds + 1)]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        try:
            engine = make_engine(stack.database_url, pool_size=2)
            try:
                results = await run_seeds(stack.api_url, engine, order, settings, parallel)
            finally:
                await engine.dispose()
        finally:
            stack.stop()
    report(results, best.quality, best_text)
    print(f"({time.perf_counter() - began:.0f} s)")
    return results
