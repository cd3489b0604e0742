"""The optimizer's decisions on simulated worlds, next to baselines measured in the same invocation.

Online (``--part online``; a pure simulation, no stack): an experiment of 5 arms, a control and 4
candidates, whose feedback scores are Bernoulli draws of hidden means: the control and 3
candidates at ``--base``, one candidate ``--gaps`` above (each gap a scenario). Each event
serves one run to the arm the allocation picks (uniform until every arm has ``min_samples``
rewards, then Thompson sampling among the candidates with half the runs kept on the control),
records its reward, and asks ``core.optimizer.experiments.decide`` (mSPRT against the control,
Bonferroni over the candidates, ``min_samples`` per arm) whether to stop: the rule is peeked at
after every event.

1. Power: over ``--seeds`` seeds, the share in which the best arm is promoted within
   ``--events`` events, with Thompson allocation and with uniform allocation (the baseline),
   under the same rule (``ts-all``: Thompson sampling with the control as one more arm, to show
   what the control's share buys); also the share that promoted a wrong arm and the median events to a win.
2. A/A: every arm at ``--base``; over ``--aa-seeds`` seeds, the share of seeds in which any
   candidate is promoted within ``--aa-events`` events (false promotions), for each allocation.

Two arms (``--part two-arm``; a pure simulation, not part of ``all``): an online experiment as
``core.optimizer.experiment_store`` runs it, a control at ``--base`` and one candidate, each event a
new subject whose arm is its hash point (``hash_point``) cut at ``1 - candidate_share`` and whose
feedback (a Bernoulli score) is counted at once. The share is ``--traffic`` until both arms have
``--min-samples`` scores, then ``candidate_share`` (Thompson over both arms, 1,000 seeded draws)
kept within [floor, 1 - floor] for each ``--floors`` value, or fixed at one half (``even``, the
baseline); the decision is ``decide`` under the experiment's rules after every event.

3. Power: over ``--two-arm-seeds`` seeds, the share in which a candidate ``--two-arm-gap`` better is
   promoted within ``--events`` events, per allocation; also wrong verdicts and the median events.
4. A/A: both arms at ``--base``; the share of ``--two-arm-aa-seeds`` seeds promoting the candidate
   within ``--aa-events`` events, per allocation.

Offline (``--part offline``; ``bench.optimizer_offline``, on an embedded stack it starts): over
``--seeds`` simulated Chat Completions worlds (``simulated/world.py``), each with a
dataset of ``--examples`` of its questions, the platform's ``OptimizerWorkflow`` with a budget of
``--budget`` evaluations against two baselines computed in this process on the same world,
dataset, budget and test gate (``bench.offline_methods``): uniform allocation of the optimizer's
own candidates, and random search. The regret of the version each ends with (the hidden best
minus its hidden quality) with a 95% bootstrap interval over seeds, the shares of seeds improved
and promoted; then over ``--aa-seeds`` A/A worlds the share of seeds with a (false) promotion,
with its Clopper-Pearson interval.

Usage: ``python -m bench.optimizer [--part online|offline|all] [--seeds N] [--aa-seeds N]
[--events E] [--aa-events E] [--gaps G,G] [--base B] [--min-samples M] [--tau T] [--budget B]
[--examples N] [--strategies S,S] [--parallel P]`` (or ``make bench-optimizer``); run it under
``flock /tmp/bench.lock`` on a shared machine;
``python -m bench.optimizer --part two-arm [--floors F,F] [--two-arm-gap G] [--two-arm-seeds N]
[--two-arm-aa-seeds N] [--traffic T] [--processes P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from statistics import NormalDist

from bench.optimizer_offline import Setup
from bench.optimizer_offline import offline as run_offline
from core.optimizer.experiment_store import (
    ALLOCATION_DRAWS,
    MIN_SHARE,
    candidate_share,
    rules_of,
    running_experiment,
    state_of,
)
from core.optimizer.experiments import ExperimentState, Rules, allocate, decide, hash_point

CONTROL = "control"
Allocator = Callable[[ExperimentState, Rules, random.Random], str]


def uniform(state: ExperimentState, rules: Rules, rng: random.Random) -> str:
    """The baseline allocation: every arm equally likely, always."""
    return rng.choice(list(state.arms))


def thompson_all(state: ExperimentState, rules: Rules, rng: random.Random) -> str:
    """Thompson sampling with the control as one more arm (no share kept for it)."""
    return allocate(state, replace(rules, control_share=None), rng)


ALLOCATIONS: dict[str, Allocator] = {"thompson": allocate, "ts-all": thompson_all, "uniform": uniform}


@dataclass(frozen=True)
class Outcome:
    """How one simulated experiment ended: the arm promoted (if any) and after how many events."""

    winner: str | None
    events: int


def simulate(means: Sequence[float], allocation: Allocator, rules: Rules, events: int, seed: int) -> Outcome:
    """One experiment over ``events`` events on arms of hidden ``means`` (the first is the control)."""
    names = [CONTROL, *(f"c{i}" for i in range(1, len(means)))]
    hidden = dict(zip(names, means, strict=True))
    state = ExperimentState.start(CONTROL, names[1:])
    chooser, world = random.Random(seed), random.Random(seed + 1_000_003)
    for event in range(1, events + 1):
        arm = allocation(state, rules, chooser)
        state = state.record(arm, 1.0 if world.random() < hidden[arm] else 0.0)
        decision = decide(state, rules)
        if decision.stop:
            return Outcome(decision.winner, event)
    return Outcome(None, events)


def power(args: argparse.Namespace, rules: Rules, gap: float) -> None:
    """Rows of the power scenario at one gap: each allocation's shares of outcomes over the seeds."""
    means = [args.base] * 4 + [args.base + gap]
    for name, allocation in ALLOCATIONS.items():
        outcomes = [simulate(means, allocation, rules, args.events, seed) for seed in range(args.seeds)]
        right = [o.events for o in outcomes if o.winner == "c4"]
        wrong = sum(1 for o in outcomes if o.winner not in (None, "c4"))
        median = f"{statistics.median(right):.0f}" if right else "-"
        print(
            f"{gap:>+5.2f} {name:<10} {len(right) / args.seeds:>14.2f} {wrong / args.seeds:>10.2f}"
            f" {(args.seeds - len(right) - wrong) / args.seeds:>6.2f} {median:>14} {args.seeds:>6}"
        )


def fixed_power(args: argparse.Namespace, gap: float) -> float:
    """Power of the fixed-horizon one-sided z-test at ``alpha / 4``, the events split evenly between two arms."""
    half = args.events // 2
    spread = math.sqrt(args.base * (1 - args.base) / half + (args.base + gap) * (1 - args.base - gap) / half)
    normal = NormalDist()
    return normal.cdf(gap / spread - normal.inv_cdf(1 - args.alpha / 4))


def online(args: argparse.Namespace) -> None:
    """Power with 5 arms and the A/A false-promotion rate, Thompson next to uniform allocation."""
    rules = Rules(alpha=args.alpha, min_samples=args.min_samples, tau=args.tau, p_best_draws=0)
    print(
        f"online: 5 arms (control + 4 candidates), Bernoulli rewards, control and 3 candidates at {args.base},"
        f" the best {' or '.join(f'+{g:g}' for g in args.gaps)} above; mSPRT against the control, alpha"
        f" {args.alpha} split over 4 candidates, tau {args.tau}, variance bound 1/4, {args.min_samples} rewards"
        f" per arm first, decided after every event; Thompson keeps {rules.control_share:g} of runs on the control"
    )
    began = time.perf_counter()
    print(
        f"\n{'gap':>5} {'allocation':<10} {'best promoted':>14} {'wrong arm':>10} {'none':>6} {'median events':>14}"
        f" {'seeds':>6}"
    )
    for gap in args.gaps:
        power(args, rules, gap)
    print(f"target: best promoted within {args.events} events in >= 0.95 of seeds")
    print(
        f"reference, no peeking: a one-sided z-test at alpha/4 after {args.events // 2} rewards on the control and"
        f" {args.events // 2} on the best arm, told which arm is best, has power "
        + ", ".join(f"{fixed_power(args, g):.2f} at +{g:g}" for g in args.gaps)
    )
    print(f"\nA/A, every arm at {args.base}, {args.aa_events} events, peeking after every event")
    print(f"{'allocation':<10} {'false promotions':>17} {'seeds':>6}")
    for name, allocation in ALLOCATIONS.items():
        outcomes = [simulate([args.base] * 5, allocation, rules, args.aa_events, seed) for seed in range(args.aa_seeds)]
        promoted = sum(1 for o in outcomes if o.winner is not None)
        print(f"{name:<10} {promoted / args.aa_seeds:>17.3f} {args.aa_seeds:>6}  ({promoted} promoted)")
    print(f"target: <= 0.05  ({time.perf_counter() - began:.0f} s)")


EVEN = "even"


def two_arm_run(
    means: tuple[float, float], floor: float | None, traffic: float, min_samples: int, events: int, seed: int
) -> Outcome:
    """One two-arm experiment as the experiment store runs it (``floor`` None: the candidate's share stays one half)."""
    experiment = running_experiment(
        f"exp_two_arm_{seed}",
        "bench",
        "bench",
        control_version=1,
        candidate_version=2,
        traffic=traffic,
        min_samples=min_samples,
        auto_promote=True,
    )
    state = state_of(experiment)
    rules = rules_of(experiment)
    hidden = {"1": means[0], "2": means[1]}
    world = random.Random(seed + 1_000_003)
    share = traffic if floor is not None else 0.5
    for event in range(1, events + 1):
        arm = "2" if hash_point(experiment.id, f"subject-{event}") >= 1 - share else "1"
        state = state.record(arm, 1.0 if world.random() < hidden[arm] else 0.0)
        decision = decide(state, rules, random.Random(0))
        if decision.stop:
            return Outcome(decision.winner, event)
        if floor is not None:
            share = candidate_share(experiment, state, floor=floor)
    return Outcome(None, events)


def _two_arm_rows(
    args: argparse.Namespace, means: tuple[float, float], events: int, seeds: int
) -> dict[str, list[Outcome]]:
    """Each allocation's outcomes over ``seeds`` seeds, simulated on ``--processes`` processes."""
    allocations: dict[str, float | None] = {f"floor {f:g}": f for f in args.floors} | {EVEN: None}
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        futures = {
            name: [
                pool.submit(two_arm_run, means, floor, args.traffic, args.min_samples, events, seed)
                for seed in range(seeds)
            ]
            for name, floor in allocations.items()
        }
        return {name: [f.result() for f in runs] for name, runs in futures.items()}


def two_arm(args: argparse.Namespace) -> None:
    """Power within ``--events`` events and the A/A false-promotion rate of two-arm experiments, per share floor."""
    began = time.perf_counter()
    gap = args.two_arm_gap
    print(
        f"two arms: control at {args.base}, candidate +{gap:g}; a new subject per event, its score counted at once;"
        f" share {args.traffic:g} until both arms have {args.min_samples} scores, then Thompson over both arms"
        f" ({ALLOCATION_DRAWS} draws) within [floor, 1 - floor], or fixed at one half ({EVEN});"
        f" mSPRT decided after every event (alpha 0.05, tau {Rules.tau})"
    )
    power_rows = _two_arm_rows(args, (args.base, args.base + gap), args.events, args.two_arm_seeds)
    print(f"\n{'allocation':<11} {'promoted':>9} {'kept control':>13} {'median events':>14} {'seeds':>6}")
    for name, outcomes in power_rows.items():
        won = [o.events for o in outcomes if o.winner == "2"]
        kept = sum(1 for o in outcomes if o.winner is None and o.events < args.events)
        median = f"{statistics.median(won):.0f}" if won else "-"
        seeds = len(outcomes)
        print(f"{name:<11} {len(won) / seeds:>9.2f} {kept / seeds:>13.2f} {median:>14} {seeds:>6}")
    print(f"(promoted: within {args.events} events; kept control: the rule stopped calling the candidate worse)")
    aa_rows = _two_arm_rows(args, (args.base, args.base), args.aa_events, args.two_arm_aa_seeds)
    print(f"\nA/A, both arms at {args.base}, {args.aa_events} events, peeking after every event")
    print(f"{'allocation':<11} {'false promotions':>17} {'seeds':>6}")
    for name, outcomes in aa_rows.items():
        promoted = sum(1 for o in outcomes if o.winner is not None)
        print(f"{name:<11} {promoted / len(outcomes):>17.3f} {len(outcomes):>6}  ({promoted} promoted)")
    print(f"target: <= 0.05  ({time.perf_counter() - began:.0f} s)")


def floats(text: str) -> list[float]:
    """Comma-separated numbers."""
    return [float(part) for part in text.split(",")]


def two_arm_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--part two-arm``."""
    parser.add_argument("--floors", type=floats, default=[0.05, MIN_SHARE], help="share floors to compare (0.05,0.2)")
    parser.add_argument("--two-arm-gap", type=float, default=0.1, help="the candidate's lead over the control")
    parser.add_argument("--two-arm-seeds", type=int, default=40, help="seeds of the two-arm power scenario")
    parser.add_argument("--two-arm-aa-seeds", type=int, default=40, help="seeds of the two-arm A/A scenario")
    parser.add_argument("--traffic", type=float, default=0.5, help="the candidate's share before allocation adapts")
    parser.add_argument("--processes", type=int, default=2, help="processes simulating seeds in parallel")


def offline(args: argparse.Namespace) -> None:
    """The optimizer's regret against random search and uniform allocation, and its A/A false promotions."""
    setup = Setup(examples=args.examples, max_evals=args.budget, strategies=args.strategies, run_timeout_s=900)
    print(
        f"offline: {args.seeds} simulated worlds and {args.aa_seeds} A/A worlds, {args.examples} examples each,"
        f" a budget of {args.budget} evaluations, strategies {', '.join(args.strategies)}; the optimizer on an"
        f" embedded stack, {args.parallel} runs at a time; uniform allocation (its candidates, the budget split"
        " evenly, no halving) and random search (random phrases of the world's six and random demos) in-process"
        " on the same worlds, datasets, budget and test gate"
    )
    asyncio.run(run_offline(args.seeds, args.aa_seeds, setup, args.parallel))


def gaps(text: str) -> list[float]:
    """Comma-separated gaps."""
    return [float(part) for part in text.split(",")]


def names(text: str) -> list[str]:
    """Comma-separated names."""
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["online", "offline", "all", "two-arm"], default="all")
    parser.add_argument(
        "--seeds", type=int, help="seeds of the power scenario (at least 30; online 100, offline 50 by default)"
    )
    parser.add_argument(
        "--aa-seeds", type=int, help="A/A seeds (online: at least 200, 200 by default; offline: at least 30, 150)"
    )
    parser.add_argument("--events", type=int, default=1000, help="feedback events per experiment")
    parser.add_argument("--aa-events", type=int, default=1000, help="feedback events per A/A experiment")
    parser.add_argument("--base", type=float, default=0.5, help="hidden mean of the control")
    parser.add_argument(
        "--gaps", type=gaps, default=[0.1, 0.15, 0.2], help="the best candidate's leads over the others (0.1,0.2)"
    )
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-samples", type=int, default=Rules.min_samples)
    parser.add_argument("--tau", type=float, default=Rules.tau)
    parser.add_argument("--budget", type=int, default=300, help="offline: evaluations per optimizer run")
    parser.add_argument("--examples", type=int, default=300, help="offline: examples per dataset")
    parser.add_argument("--strategies", type=names, default=["few_shot", "reflective"], help="offline: S,S")
    parser.add_argument("--parallel", type=int, default=4, help="offline: optimizer runs at a time")
    two_arm_arguments(parser)
    args = parser.parse_args()
    given = vars(args).copy()
    if args.part == "two-arm":
        two_arm(args)
    if args.part in ("online", "all"):
        args.seeds, args.aa_seeds = given["seeds"] or 100, given["aa_seeds"] or 200
        if args.seeds < 30 or args.aa_seeds < 200:
            parser.error("online: --seeds is at least 30 and --aa-seeds at least 200")
        online(args)
    if args.part in ("offline", "all"):
        args.seeds, args.aa_seeds = given["seeds"] or 50, given["aa_seeds"] or 150
        if args.seeds < 30 or args.aa_seeds < 30 or not 1 <= args.parallel <= 16 or args.budget < 1:
            parser.error("offline: --seeds and --aa-seeds are at least 30, --parallel 1 to 16, --budget at least 1")
        print()
        offline(args)


if __name__ == "__main__":
    main()
