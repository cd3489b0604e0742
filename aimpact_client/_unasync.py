"""Write the synchronous client (``_sync/``) from the asynchronous one (``_async/``), its one source.

``python -m aimpact_client._unasync`` regenerates it; ``--check`` exits 1 when ``_sync/`` is
stale. The rewrite is textual (``async def`` → ``def``, ``await x`` → ``x``, ``AsyncX`` → ``X``,
``aclose`` → ``close``, ``aclosing`` → ``closing``, asyncio's lock and sleep → threading's and time's, a loop that
re-yields → ``yield from``), then ruff sorts the
imports and formats the result as ``make lint`` expects.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent
MODULES = ("transport.py", "resources.py", "client.py")
_RULES: tuple[tuple[str, str], ...] = (
    (r"aimpact_client\._async\.", "aimpact_client._sync."),
    (r"\basync (def|for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\bAsyncGenerator\[(.+?), None\]", r"Generator[\1, None, None]"),
    (r"\bAsync(?=[A-Z])", ""),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_lines\b", "iter_lines"),
    (r"\baclosing\b", "closing"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\basyncio\.Lock\(\)", "threading.Lock()"),
    (r"\basyncio\.sleep\(", "time.sleep("),
    (r"for asyncio programs", "for synchronous programs"),
    (r"\basynchronous\b", "synchronous"),
    (r"(?m)^( *)for (\w+) in (.*):\n *yield \2\n(?=\n)", r"\1yield from \3\n"),  # a loop that is all the body
)


def unasync(source: str, name: str) -> str:
    """The synchronous twin of the asynchronous module ``source`` (not yet formatted)."""
    for pattern, replacement in _RULES:
        source = re.sub(pattern, replacement, source)
    needed = [m for m in ("threading", "time") if f"{m}." in source and not re.search(rf"^import {m}$", source, re.M)]
    source = re.sub(r"^import asyncio\n", "".join(f"import {m}\n" for m in needed), source, flags=re.M)
    header = f"# Generated from aimpact_client/_async/{name} by `python -m aimpact_client._unasync`: edit that file.\n"
    return header + source


def _ruff(args: list[str], source: str, path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(path.relative_to(PACKAGE.parent)), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    return done.stdout


def generated() -> dict[Path, str]:
    """Each file of ``_sync/`` as it should read."""
    files = {}
    for name in MODULES:
        target = PACKAGE / "_sync" / name
        source = unasync((PACKAGE / "_async" / name).read_text(), name)
        source = _ruff(["check", "--select", "I", "--fix", "--exit-zero", "--quiet"], source, target)
        files[target] = _ruff(["format", "--quiet"], source, target)
    return files


def main(argv: list[str]) -> int:
    """Regenerate ``_sync/`` (or, with ``--check``, report whether it is current)."""
    stale = [path for path, text in generated().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            sys.stderr.write(f"{path} is stale: run python -m aimpact_client._unasync\n")
        return 1 if stale else 0
    for path, text in generated().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
