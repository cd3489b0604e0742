"""``RecommendationWorkflow``: one mining pass over a tenant's history.

Every miner runs as its own ``recommend.mine`` activity, concurrently, on the tenant's
fairness key; their findings go to one ``recommend.save`` (dedupe, suppression, staleness),
then ``recommend.outcomes`` measures what earlier applies changed. The history holds findings
(numbers, ids, patches), never run texts. A tenant's schedule starts a pass every
``AIMPACT_RECOMMEND_INTERVAL_S``; ``POST /v1/recommendations/refresh`` starts one at once
(a refresh while one runs gets the running one).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.recommend import RecommendationActivities
    from core.contracts.recommend import (
        MINERS,
        WORKFLOW_NAME,
        Measured,
        Mined,
        MineInput,
        OutcomesInput,
        RecommendationInput,
        Saved,
        SaveInput,
    )
    from workflows._helpers import fair_activity


@workflow.defn(name=WORKFLOW_NAME)
class RecommendationWorkflow:
    """One pass; see the module docstring."""

    @workflow.run
    async def run(self, inp: RecommendationInput) -> dict[str, Any]:
        """Mine, save, measure; a summary of the pass."""
        heartbeat = inp.heartbeat_timeout_s

        async def one(miner: str) -> Mined:
            arg = MineInput(tenant_id=inp.tenant_id, miner=miner, window_days=inp.window_days)
            found: Mined = await fair_activity(
                RecommendationActivities.mine, arg, Mined, tenant_id=inp.tenant_id, heartbeat_timeout_s=heartbeat
            )
            return found

        mined = await asyncio.gather(*(one(miner) for miner in MINERS))
        kinds = [kind.value for miner in MINERS for kind in MINERS[miner]]
        findings = [f for m in mined for f in m.findings]
        save = SaveInput(tenant_id=inp.tenant_id, kinds=kinds, findings=findings)
        saved: Saved = await fair_activity(RecommendationActivities.save, save, Saved, tenant_id=inp.tenant_id)
        measured: Measured = await fair_activity(
            RecommendationActivities.outcomes,
            OutcomesInput(tenant_id=inp.tenant_id, window_days=inp.window_days),
            Measured,
            tenant_id=inp.tenant_id,
            heartbeat_timeout_s=heartbeat,
        )
        return {
            "trigger": inp.trigger,
            "runs": {m.miner: m.scanned for m in mined},
            "findings": {m.miner: len(m.findings) for m in mined},
            "opened": saved.opened,
            "updated": saved.updated,
            "suppressed": saved.suppressed,
            "stale": saved.stale,
            "outcomes_measured": measured.measured,
        }
