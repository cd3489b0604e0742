"""The examples of a recommended optimizer run: the runs of a cluster, as the optimizer's dataset takes them.

Each run gives its input. A run rated well (mean feedback at least ``GOOD_SCORE``) gives its
output as ``expected`` (a reference answer for the judge); a run with feedback comments gives
them as its ``rubric`` (what people found wrong), so the judge and the reflective strategy see
why the cluster went badly.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.optimizer.datasets import Example

GOOD_SCORE = 0.8
MAX_RUBRIC_CHARS = 2000


async def cluster_examples(
    session: AsyncSession, tenant_id: str, agent_id: str, run_ids: Sequence[str]
) -> list[Example]:
    """The runs of ``run_ids`` that still exist (the agent's, completed or failed) as examples, in that order."""
    rows = await (await session.connection()).execute(
        text(
            "SELECT r.id, r.input, r.output, r.status, avg(f.score) AS score,"
            " string_agg(f.comment, ' / ' ORDER BY f.created_at) FILTER (WHERE f.comment IS NOT NULL) AS comments"
            " FROM run r LEFT JOIN run_feedback f ON f.run_id = r.id AND f.tenant_id = :t"
            " WHERE r.tenant_id = :t AND r.agent_id = :a AND r.id = ANY(:ids) AND r.status IN ('completed', 'failed')"
            " GROUP BY r.id"
        ),
        {"t": tenant_id, "a": agent_id, "ids": list(run_ids)},
    )
    found = {row.id: row for row in rows}
    examples = []
    for run_id in run_ids:
        row = found.get(run_id)
        if row is None:
            continue
        score = None if row.score is None else float(row.score)
        good = row.status == "completed" and score is not None and score >= GOOD_SCORE and bool(row.output)
        examples.append(
            Example(
                input=row.input,
                expected=row.output if good else None,
                rubric=row.comments[:MAX_RUBRIC_CHARS] if row.comments else None,
                output=row.output,
                source_run_id=row.id,
                feedback_score=score,
            )
        )
    return examples
