"use client";
import { useState } from "react";

import { Button } from "@/components/ui/Button";
import { ErrorBox } from "@/components/ui/Feedback";

type Props = {
  stepId: string;
  prompt?: string | null;
  onDecide: (decision: "approve" | "reject", comment: string) => Promise<unknown>;
};

/** Approve or reject a waiting step, with an optional comment. */
export function ApprovalControl({ stepId, prompt, onDecide }: Props) {
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState<"approve" | "reject" | null>(null);
  const [error, setError] = useState<unknown>(null);
  const decide = async (decision: "approve" | "reject") => {
    setBusy(decision);
    setError(null);
    try {
      await onDecide(decision, comment);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="alert alert-info stack" role="group" aria-label={`Approval of step ${stepId}`} style={{ margin: "6px 0", gap: 8 }}>
      <strong>Step {stepId} waits for approval{prompt ? `: ${prompt}` : ""}</strong>
      <div className="row">
        <div className="field" style={{ flex: 1, minWidth: 200 }}>
          <label htmlFor={`comment-${stepId}`}>Comment (optional)</label>
          <input id={`comment-${stepId}`} value={comment} onChange={(e) => setComment(e.target.value)} />
        </div>
        <Button variant="primary" busy={busy === "approve"} disabled={busy !== null} onClick={() => void decide("approve")}>
          Approve
        </Button>
        <Button variant="danger" busy={busy === "reject"} disabled={busy !== null} onClick={() => void decide("reject")}>
          Reject
        </Button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}
