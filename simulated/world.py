"""A simulated world for the optimizer: a Chat Completions server whose answers are right with a hidden probability.

Questions come from a seeded bank in three slices, each input marked with its slice:
``[math] What is 37 + 48?``, ``[geo] What is the capital of Peru?``, ``[words] Spell 'garden'
backwards.`` The server can solve every bank question, so it knows the right answer; it gives
it with a probability that is a hidden function of the prompt:

- phrases of the system prompt ("instructions"): ``step by step``, ``one word``, ``cite the
  source``, ``you are an expert``, ``be creative``, ``double-check``; some help, some hurt, the
  effects differ by slice and two pairs interact (step by step with double-check helps more,
  step by step with one word hurts math);
- few-shot demos, either user/assistant pairs before the question or ``Input:``/``Output:``
  (``Question:``/``Answer:``, ``Q:``/``A:``) line pairs in the instructions: right demos of the
  question's slice help most, wrong demos hurt, more than eight dilute;
- the model name (``sim-large`` is better, ``sim-small`` worse at math).

A wrong answer is a plausible one (a near sum, another capital, a misspelling). The outcome
is a deterministic function of (world seed, instructions, demos, model, question, the
request's ``seed`` param, and, with ``resample``, the attempt number of that prompt on that
question), so the same evaluation gives the same result. In the A/A world (``aa=True``)
every prompt is equally good.

The same server plays two other roles: a *judge* when the prompt holds ``<output>`` tags (the
form of ``core.optimizer.metrics.judge_prompt``), right ``judge_accuracy`` of the time; and a
*reflection model* when it is asked to write, propose or improve instructions: it answers with
the current instructions (the first fenced block) with one feature phrase added or removed,
the best edit ``reflection_accuracy`` of the time and a random one otherwise, with a reason
that is right only when the edit is. ``hidden_quality`` gives the expected accuracy of a
prompt for benchmarks and tests; no platform package may import this module (``lint-imports``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from simulated.scripted_server import Received, Reply, ScriptedServer, oa_chunk, oa_completion, oa_stream, oa_usage

SLICES = ("math", "geo", "words")

FEATURES: dict[str, tuple[str, ...]] = {
    "step_by_step": ("step by step",),
    "one_word": ("one word", "only the answer", "just the answer"),
    "cite": ("cite the source", "cite your source", "cite sources"),
    "expert": ("you are an expert",),
    "creative": ("be creative",),
    "double_check": ("double-check", "double check"),
}
"""Hidden features: phrases of the instructions (matched case-insensitively)."""

PHRASES = {
    "step_by_step": "Think step by step.",
    "one_word": "Answer with one word.",
    "cite": "Cite the source.",
    "expert": "You are an expert.",
    "creative": "Be creative.",
    "double_check": "Double-check your answer.",
}
"""The sentence the reflection model adds for each feature."""

_BASE = {"math": -0.4, "geo": 0.5, "words": -0.2}
_EFFECTS = {
    "step_by_step": {"math": 1.6, "geo": -0.3, "words": 0.6},
    "one_word": {"math": -0.5, "geo": 0.9, "words": 0.4},
    "cite": {"math": -0.6, "geo": 0.6, "words": -0.5},
    "expert": {"math": 0.2, "geo": 0.2, "words": 0.2},
    "creative": {"math": -0.9, "geo": -0.6, "words": -1.0},
    "double_check": {"math": -0.2, "geo": -0.2, "words": -0.2},
}
_INTERACTIONS = {
    ("step_by_step", "double_check"): {"math": 1.0, "geo": 0.2, "words": 0.6},
    ("step_by_step", "one_word"): {"math": -1.0, "geo": 0.0, "words": -0.3},
}
_MODELS = {"sim-large": {"math": 0.6, "geo": 0.4, "words": 0.5}, "sim-small": {"math": -0.9, "geo": 0.0, "words": -0.2}}
_GOOD_SAME_DEMO, _GOOD_OTHER_DEMO, _BAD_DEMO, _EXTRA_DEMO = 0.35, 0.1, -0.5, -0.2
_COUNTED_DEMOS, _MAX_DEMOS = 3, 8

_CAPITALS = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Russia", "Moscow"),
    ("Greece", "Athens"), ("Turkey", "Ankara"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
    ("Hungary", "Budapest"), ("Ireland", "Dublin"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"),
    ("Switzerland", "Bern"), ("Cuba", "Havana"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Ecuador", "Quito"), ("Mongolia", "Ulaanbaatar"),
    ("Nepal", "Kathmandu"),
)  # fmt: skip
_WORDS = (
    "garden", "planet", "silver", "window", "orange", "pencil", "rocket", "basket", "castle", "dragon", "forest",
    "guitar", "hammer", "island", "jacket", "kitten", "ladder", "magnet", "needle", "oyster", "parrot", "quartz",
    "rabbit", "saddle", "tunnel", "velvet", "walnut", "yellow", "zipper", "anchor", "bridge", "candle", "donkey",
    "engine", "falcon", "ginger", "helmet", "insect", "jungle", "kettle", "lemon", "marble", "nectar", "office",
    "puzzle", "riddle", "spider", "throne", "violin", "wizard", "almond", "bottle", "carpet", "desert", "feather",
    "goblet", "harbor", "igloo", "jigsaw", "kernel", "lizard", "meadow", "napkin", "orchid", "pepper", "ribbon",
    "salmon", "turnip", "umpire", "voyage", "wallet", "yogurt", "zenith", "badger", "cactus", "dinner", "fabric",
    "goblin", "hornet", "inkpot",
)  # fmt: skip

_MATH = re.compile(r"What is (\d+) ([+-]) (\d+)\?")
_CAPITAL_OF = re.compile(r"What is the capital of (.+?)\?")
_COUNTRY_OF = re.compile(r"Which country has the capital (.+?)\?")
_BACKWARDS = re.compile(r"Spell '(\w+)' backwards\.")
_MARKER = re.compile(r"^\s*\[(\w+)\]\s*")
_EMBEDDED_DEMO = re.compile(
    r"^[ \t]*(?:input|question|q|user)[ \t]*:[ \t]*(?P<input>.+?)[ \t]*\n"
    r"[ \t]*(?:output|answer|a|assistant)[ \t]*:[ \t]*(?P<output>.+?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_REFLECTION = re.compile(r"\b(?:propose|write|suggest|rewrite|improve)\b[^.\n]{0,60}\binstructions?\b", re.IGNORECASE)
_FENCED = re.compile(r"```[A-Za-z]*\n?(.*?)```", re.DOTALL)

Demo = tuple[str, str]
"""A few-shot demo: (input, output)."""


@dataclass(frozen=True)
class Prompt:
    """What the hidden function reads from a request."""

    instructions: str = ""
    demos: tuple[Demo, ...] = ()
    model: str = ""

    def features(self) -> frozenset[str]:
        """The hidden features present in the instructions."""
        text = self.instructions.casefold()
        return frozenset(name for name, phrases in FEATURES.items() if any(p in text for p in phrases))

    def all_demos(self) -> tuple[Demo, ...]:
        """Demos given as messages and demos written into the instructions."""
        embedded = tuple((m["input"], m["output"]) for m in _EMBEDDED_DEMO.finditer(self.instructions))
        return self.demos + embedded


def solve(question: str) -> tuple[str, str] | None:
    """``(slice, right answer)`` of a bank question (with or without its marker); ``None`` for others."""
    text = _MARKER.sub("", question.strip())
    if found := _MATH.fullmatch(text):
        a, op, b = int(found[1]), found[2], int(found[3])
        return "math", str(a + b if op == "+" else a - b)
    if found := _CAPITAL_OF.fullmatch(text):
        capital = dict(_CAPITALS).get(found[1])
        return ("geo", capital) if capital else None
    if found := _COUNTRY_OF.fullmatch(text):
        country = {capital: country for country, capital in _CAPITALS}.get(found[1])
        return ("geo", country) if country else None
    if found := _BACKWARDS.fullmatch(text):
        return "words", found[1][::-1]
    return None


def question_bank(seed: int, n: int) -> list[dict[str, str]]:
    """``n`` examples ``{input, expected, slice}``, slices in turn, without repeats in a slice while it lasts."""
    pools = {
        "math": [f"What is {a} {op} {b}?" for a in range(10, 100) for b in range(10, 100) for op in "+-"],
        "geo": [f"What is the capital of {country}?" for country, _ in _CAPITALS]
        + [f"Which country has the capital {capital}?" for _, capital in _CAPITALS],
        "words": [f"Spell '{word}' backwards." for word in _WORDS],
    }
    for name, pool in pools.items():
        random.Random(f"{seed}:{name}").shuffle(pool)
    bank = []
    for i in range(n):
        name = SLICES[i % len(SLICES)]
        pool = pools[name]
        question = f"[{name}] {pool[(i // len(SLICES)) % len(pool)]}"
        solved = solve(question)
        assert solved is not None
        bank.append({"input": question, "expected": solved[1], "slice": name})
    return bank


def hidden_quality(
    instructions: str = "", demos: Sequence[Demo] = (), model: str = "", *, aa: bool = False, slice: str | None = None
) -> float:
    """The expected accuracy of a prompt over the bank (its slices in equal shares), or on one ``slice``."""
    prompt = Prompt(instructions, tuple(demos), model)
    slices = SLICES if slice is None else (slice,)
    return sum(_p_right(prompt, s, aa=aa) for s in slices) / len(slices)


def _p_right(prompt: Prompt, slice: str, *, aa: bool) -> float:
    logit = _BASE[slice]
    if not aa:
        features = prompt.features()
        logit += sum(_EFFECTS[f][slice] for f in features)
        logit += sum(effect[slice] for pair, effect in _INTERACTIONS.items() if set(pair) <= features)
        logit += _MODELS.get(prompt.model, {}).get(slice, 0.0)
        logit += _demo_effect(prompt.all_demos(), slice)
    return 1.0 / (1.0 + math.exp(-logit))


def _demo_effect(demos: Sequence[Demo], slice: str) -> float:
    kinds: Counter[str] = Counter()
    for question, answer in demos:
        solved = solve(question)
        if solved is None:
            continue
        right = _norm(answer) == _norm(solved[1])
        kinds["bad" if not right else "same" if solved[0] == slice else "other"] += 1
    return (
        _GOOD_SAME_DEMO * min(kinds["same"], _COUNTED_DEMOS)
        + _GOOD_OTHER_DEMO * min(kinds["other"], _COUNTED_DEMOS)
        + _BAD_DEMO * kinds["bad"]
        + _EXTRA_DEMO * max(0, len(demos) - _MAX_DEMOS)
    )


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) determined by ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class SimWorld:
    """The hidden world: answers chat requests and knows the true quality of every prompt."""

    seed: int = 0
    aa: bool = False
    resample: bool = False
    judge_accuracy: float = 0.9
    reflection_accuracy: float = 0.6
    _attempts: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def hidden_quality(
        self, instructions: str = "", demos: Sequence[Demo] = (), model: str = "", *, slice: str | None = None
    ) -> float:
        """``hidden_quality`` in this world (A/A or not)."""
        return hidden_quality(instructions, demos, model, aa=self.aa, slice=slice)

    @contextmanager
    def serve(self) -> Iterator[ScriptedServer]:
        """Run the server on 127.0.0.1 (a free port) while the block runs; its base URL is ``f"{url}/v1"``."""
        server = ScriptedServer(respond=self.reply).start()
        try:
            yield server
        finally:
            server.stop()

    def reply(self, received: Received) -> Reply:
        """The HTTP answer to one request (streamed when it asks for a stream)."""
        if not received.path.endswith("/chat/completions"):
            return _error(404, f"no route {received.path}")
        body = received.body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(body.get("model"), str):
            return _error(400, "`model` and a non-empty `messages` list are required")
        content = self.answer(body)
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        if not body.get("stream"):
            return oa_completion(content, model=body["model"], prompt=prompt_tokens, completion=completion_tokens)
        pieces = [content[i : i + 8] for i in range(0, len(content), 8)] or [""]
        chunks = [oa_chunk({"role": "assistant", "content": ""})] + [oa_chunk({"content": p}) for p in pieces]
        chunks.append(oa_chunk({}, finish="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(oa_usage(prompt_tokens, completion_tokens))
        return oa_stream(*chunks)

    def answer(self, body: dict[str, Any]) -> str:
        """The text answer to a Chat Completions request body: a task answer, a judge verdict or new instructions."""
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        text = "\n".join(str(m.get("content") or "") for m in messages)
        key = (self.seed, body.get("seed"), hashlib.sha256(text.encode()).hexdigest(), body.get("model"))
        if "<output>" in text and "</output>" in text:
            return self._judge(text, self._draw("judge", *key))
        if _REFLECTION.search(text):
            return self._reflect(text, self._draw("reflect", *key), json_mode=_json_mode(body))
        return self._task(messages, str(body.get("model") or ""), body.get("seed"))

    def _draw(self, *key: object) -> float:
        attempt = 0
        if self.resample:
            with self._lock:
                attempt = self._attempts[repr(key)]
                self._attempts[repr(key)] += 1
        return _unit(*key, attempt)

    def _task(self, messages: list[dict[str, Any]], model: str, request_seed: object) -> str:
        system = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
        turns = [m for m in messages if m.get("role") in ("user", "assistant")]
        question = str(turns[-1].get("content") or "") if turns and turns[-1].get("role") == "user" else ""
        demos = tuple(
            (str(a.get("content") or ""), str(b.get("content") or ""))
            for a, b in zip(turns[:-1:2], turns[1:-1:2], strict=False)
            if a.get("role") == "user" and b.get("role") == "assistant"
        )
        solved = solve(question)
        if solved is None:
            return "I don't know."
        slice, right = solved
        prompt = Prompt(system, demos, model)
        u = self._draw("task", self.seed, request_seed, system, demos, model, question)
        if u < _p_right(prompt, slice, aa=self.aa):
            return right
        return _wrong(slice, right, _unit(self.seed, "wrong", system, demos, model, question, u))

    def _judge(self, text: str, u: float) -> str:
        tags = {name: _tagged(text, name) for name in ("input", "output", "reference")}
        output = tags["output"] or ""
        solved = solve(tags["input"] or "")
        right = solved[1] if solved else tags["reference"]
        if right is None:
            return "score: 0.5\nreason: there is nothing to check the answer against."
        correct = _norm(output) == _norm(right)
        if u >= self.judge_accuracy:
            correct = not correct
        if correct:
            return f"score: 1\nreason: {output!r} is the right answer."
        return f"score: 0\nreason: the right answer is {right!r}, not {output!r}."

    def _reflect(self, text: str, u: float, *, json_mode: bool) -> str:
        fenced = _FENCED.search(text)
        current = fenced[1].strip() if fenced else ""
        before = self.hidden_quality(current)
        edits = [(_toggle(current, name), name) for name in FEATURES]
        gains = [self.hidden_quality(new) - before for new, _ in edits]
        if u < self.reflection_accuracy:
            best = [i for i, g in enumerate(gains) if g == max(gains)]
            chosen = best[int(_unit(self.seed, "best", text) * len(best))]
        else:
            chosen = int(_unit(self.seed, "random", text, u) * len(edits))
        new, name = edits[chosen]
        reason = _reflection_reason(name, adding=name in Prompt(new).features(), current=current, aa=self.aa)
        if json_mode:
            return json.dumps({"reason": reason, "instructions": new})
        return f"{reason}\n\n```\n{new}\n```"


def _tagged(text: str, name: str) -> str | None:
    """The text inside ``<name>`` tags as ``judge_prompt`` writes them (unescaped), if any."""
    found = re.search(f"<{name}>\n(.*?)\n</{name}>", text, re.DOTALL)
    return found[1].replace("<\\/", "</") if found else None


def _toggle(instructions: str, feature: str) -> str:
    """``instructions`` with ``feature``'s phrase added when absent, its sentences removed when present."""
    if feature not in Prompt(instructions).features():
        return f"{instructions.rstrip()} {PHRASES[feature]}".strip()
    phrases = "|".join(re.escape(p) for p in FEATURES[feature])
    kept = re.sub(rf"[^.!?\n]*(?:{phrases})[^.!?\n]*[.!?]?[ \t]*", "", instructions, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", kept).strip()


def _reflection_reason(feature: str, *, adding: bool, current: str, aa: bool) -> str:
    """Why the edit should help: the slice it helps most, per the hidden function (wrong when the edit hurts)."""
    after = _toggle(current, feature)
    by_slice = {s: hidden_quality(after, aa=aa, slice=s) - hidden_quality(current, aa=aa, slice=s) for s in SLICES}
    target = max(SLICES, key=lambda s: by_slice[s])
    verb = "adding" if adding else "removing"
    return f"Failures cluster on {target} questions; {verb} {PHRASES[feature]!r} should fix them."


def _wrong(slice: str, right: str, u: float) -> str:
    """A plausible wrong answer, chosen by ``u``."""
    if slice == "math":
        offset = 1 + int(u * 9)
        return str(int(right) + (offset if u < 0.5 else -offset))
    if slice == "geo":
        names = [name for pair in _CAPITALS for name in pair if name != right]
        same_kind = [n for n in names if (n in dict(_CAPITALS)) == (right in dict(_CAPITALS))]
        return same_kind[int(u * len(same_kind))]
    pairs = [i for i in range(len(right) - 1) if right[i] != right[i + 1]]
    if not pairs:
        return right + right[-1:]
    i = pairs[int(u * len(pairs))]
    return right[:i] + right[i + 1] + right[i] + right[i + 2 :]


def _json_mode(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def _error(status: int, message: str) -> Reply:
    return Reply(status, body={"error": {"message": message, "type": "invalid_request_error", "param": None}})
