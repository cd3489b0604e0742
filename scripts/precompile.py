"""Byte-compile what ``aimpact up`` loads, by loading it once (``make`` runs this after an install).

The environment holds about 20,000 modules (2 GB); the stack's processes load about
8,000 of them. Compiling everything took minutes and mostly compiled modules nothing
imports; compiling nothing leaves each process of a first start (API, workers) to
compile the same modules at once. This imports the entry points of those processes,
loads the embedding model, then compiles the rest of every package directory touched,
for the modules imported later at run time (a provider's types, a protocol's parts).
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import importlib
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ENTRY_MODULES = (
    "cli.main",
    "workers.embedded.supervisor",
    "api.app",
    "workers.runner",
    "core.llm.anthropic_provider",
    "core.llm.openai_provider",
)
RUNTIME_MODULES = (
    "uvicorn.main",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "httpcore._async.http11",
    "httpcore._sync.http11",
)
"""Imported by the processes once they serve; a name a new release dropped is skipped."""


def _compile(path: str) -> bool:
    return bool(compileall.compile_file(path, quiet=2))


def main() -> None:
    """Import, load the model, compile the directories touched."""
    warnings.simplefilter("ignore")  # deprecations of dependencies: not for an install log
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ENTRY_MODULES:
        importlib.import_module(name)
    for name in RUNTIME_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from core.memory.embedders import MiniLMEmbedder

    asyncio.run(MiniLMEmbedder().warm())
    directories = _directories()
    files = sorted({str(path) for d in directories for path in d.glob("*.py")})
    with ProcessPoolExecutor() as pool:
        failed = list(pool.map(_compile, files, chunksize=64)).count(False)
    skipped = f" ({failed} not valid Python 3.11 source, left as they are)" if failed else ""
    print(f"compiled {len(files)} modules in {len(directories)} directories{skipped}")  # noqa: T201 - a script


def _directories() -> set[Path]:
    return {
        Path(file).parent
        for module in list(sys.modules.values())
        if isinstance(file := getattr(module, "__file__", None), str) and file.endswith(".py")
    }


if __name__ == "__main__":
    main()
