"use client";
/** Follow a run's event stream and refresh the queries it touches as events arrive. */
import { useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { followEvents, type StreamEvent, type StreamState } from "@/lib/events";

export function useLiveEvents(path: string | null, keys: QueryKey[], isFinal: (event: StreamEvent) => boolean) {
  const queries = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");
  const [events, setEvents] = useState<StreamEvent[]>([]);
  const keysRef = useRef(keys);
  keysRef.current = keys;
  const finalRef = useRef(isFinal);
  finalRef.current = isFinal;
  useEffect(() => {
    if (!path) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | null = null;
    setEvents([]);
    const refresh = () => {
      timer ??= setTimeout(() => {
        timer = null;
        keysRef.current.forEach((queryKey) => void queries.invalidateQueries({ queryKey }));
      }, 150);
    };
    void followEvents(path, {
      signal: abort.signal,
      onState: (s) => {
        setState(s);
        if (s === "ended") refresh();
      },
      onEvent: (event) => {
        setEvents((all) => [...all.slice(-199), event]);
        refresh();
      },
      isFinal: (event) => finalRef.current(event),
    });
    return () => {
      abort.abort();
      if (timer) clearTimeout(timer);
    };
  }, [path, queries]);
  return { state, events };
}
