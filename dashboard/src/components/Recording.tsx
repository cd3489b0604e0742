"use client";
/**
 * A recording the API serves only with credentials: fetched as a blob with the in-memory token once it
 * scrolls into view, and played by an <audio> element from an object URL (revoked when it goes away).
 */
import { useEffect, useRef, useState } from "react";

import { authorisedGet } from "@/api/client";

export function Recording({ url, label }: { url: string | null; label: string }) {
  const holder = useRef<HTMLDivElement>(null);
  const [src, setSrc] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    const element = holder.current;
    if (!url || !element) return;
    let objectUrl: string | null = null;
    let gone = false;
    const load = async () => {
      try {
        const response = await authorisedGet(url);
        if (!response.ok) throw new Error(response.status === 404 ? "no longer kept" : `HTTP ${response.status}`);
        const blob = await response.blob();
        if (gone) return;
        objectUrl = URL.createObjectURL(blob);
        setSrc(objectUrl);
      } catch (error) {
        if (!gone) setProblem(error instanceof Error ? error.message : String(error));
      }
    };
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        observer.disconnect();
        void load();
      }
    });
    observer.observe(element);
    return () => {
      gone = true;
      observer.disconnect();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url]);
  return (
    <div ref={holder} className="recording">
      {!url ? (
        <span className="muted small">no recording</span>
      ) : src ? (
        <audio controls preload="metadata" src={src} aria-label={label} />
      ) : (
        <span className="muted small">{problem ? `Recording ${problem}` : "Loading the recording…"}</span>
      )}
    </div>
  );
}
