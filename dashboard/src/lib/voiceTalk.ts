"use client";
/** Talk to a voice session from the browser: microphone up, events and reply audio down, barge-in. */
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useReducer, useRef } from "react";

import { VoiceAudio } from "@/lib/voiceAudio";
import { VoiceStream, type StreamPhase, type VoiceEvent } from "@/lib/voiceStream";

/** A turn as the stream tells it: the transcript so far, the reply's sentences, how it ended. */
export type LiveTurn = {
  turnId: string;
  transcript: string;
  final: boolean;
  reply: string[];
  done: boolean;
  heard: string | null;
  /** `latency_ms` of the turn's metrics: the stages, `total` and, on streams, `first_audio` (what the user waited). */
  latency: Record<string, number> | null;
};

export type TalkState = {
  phase: StreamPhase | "idle";
  detail: string | null;
  hearing: boolean;
  turns: LiveTurn[];
  events: VoiceEvent[];
};

type Action = { kind: "event"; event: VoiceEvent } | { kind: "phase"; phase: TalkState["phase"]; detail?: string | null } | { kind: "reset" };

const INITIAL: TalkState = { phase: "idle", detail: null, hearing: false, turns: [], events: [] };

/** Change the turn `turnId` (partial transcripts have none yet: they go to a pending turn, which the final
 * transcript's turn id then names). */
function updateTurn(turns: LiveTurn[], turnId: unknown, change: (turn: LiveTurn) => LiveTurn): LiveTurn[] {
  const id = typeof turnId === "string" ? turnId : "";
  let index = turns.findIndex((t) => t.turnId === id);
  if (index < 0 && id) index = turns.findIndex((t) => t.turnId === "");
  const found = turns[index];
  const next = change(found ? { ...found, turnId: id } : { turnId: id, transcript: "", final: false, reply: [], done: false, heard: null, latency: null });
  return index >= 0 ? turns.map((t, i) => (i === index ? next : t)) : [...turns, next];
}

function reduce(state: TalkState, action: Action): TalkState {
  if (action.kind === "reset") return INITIAL;
  if (action.kind === "phase") return { ...state, phase: action.phase, detail: action.detail === undefined ? state.detail : action.detail };
  const e = action.event;
  const events = [...state.events.slice(-99), e];
  const text = typeof e.text === "string" ? e.text : "";
  switch (e.type) {
    case "speech_started":
      return { ...state, events, hearing: true };
    case "transcript":
      return { ...state, events, hearing: !e.final, turns: updateTurn(state.turns, e.turn_id, (t) => ({ ...t, transcript: text, final: Boolean(e.final) })) };
    case "reply": {
      const index = typeof e.index === "number" ? e.index : 0;
      return { ...state, events, turns: updateTurn(state.turns, e.turn_id, (t) => ({ ...t, reply: Object.assign([...t.reply], { [index]: text }) })) };
    }
    case "reply_done":
      return { ...state, events, turns: updateTurn(state.turns, e.turn_id, (t) => ({ ...t, done: true })) };
    case "interrupted":
      return { ...state, events, turns: updateTurn(state.turns, e.turn_id, (t) => ({ ...t, done: true, heard: typeof e.heard_text === "string" ? e.heard_text : "" })) };
    case "metrics":
      return { ...state, events, turns: updateTurn(state.turns, e.turn_id, (t) => ({ ...t, latency: (e.latency_ms as Record<string, number> | undefined) ?? null })) };
    case "error":
      return { ...state, events, detail: typeof e.message === "string" ? e.message : String(e.code ?? "error") };
    case "ended":
      return { ...state, events, hearing: false, detail: `The session has ended${typeof e.reason === "string" ? ` (${e.reason})` : ""}.` };
    default:
      return { ...state, events };
  }
}

const TURN_CLOSED = new Set(["reply_done", "interrupted", "metrics", "ended"]);

export function useVoiceTalk(sessionId: string) {
  const [state, dispatch] = useReducer(reduce, INITIAL);
  const queries = useQueryClient();
  const audio = useRef<VoiceAudio | null>(null);
  const stream = useRef<VoiceStream | null>(null);

  const hangUp = useCallback(() => {
    stream.current?.close();
    stream.current = null;
    audio.current?.close();
    audio.current = null;
  }, []);
  useEffect(() => hangUp, [hangUp]);

  const start = useCallback(async () => {
    hangUp();
    dispatch({ kind: "reset" });
    dispatch({ kind: "phase", phase: "connecting" });
    const live = new VoiceStream(sessionId, {
      onEvent: (event) => {
        if (event.type === "speech_started" && audio.current?.speaking) audio.current.silence(); // barge-in
        if (event.type === "interrupted" || event.type === "ended") audio.current?.silence();
        dispatch({ kind: "event", event });
        if (TURN_CLOSED.has(event.type)) void queries.invalidateQueries({ queryKey: ["voice-session", sessionId] });
      },
      onAudio: (pcm) => audio.current?.play(pcm),
      onPhase: (phase, detail) => {
        dispatch({ kind: "phase", phase, detail });
        if (phase === "closed") {
          audio.current?.close();
          audio.current = null;
        }
      },
    });
    stream.current = live;
    try {
      audio.current = await VoiceAudio.open((pcm) => live.sendAudio(pcm));
    } catch (error) {
      live.close();
      stream.current = null;
      const name = error instanceof DOMException ? error.name : "";
      const detail = name === "NotAllowedError" ? "The browser was not allowed to use the microphone." : error instanceof Error ? error.message : String(error);
      dispatch({ kind: "phase", phase: "closed", detail });
      return;
    }
    await live.connect();
  }, [sessionId, hangUp, queries]);

  const interrupt = useCallback(() => {
    audio.current?.silence();
    stream.current?.control("interrupt");
  }, []);

  /** End the session over the stream; `false` when no stream is open (end it over HTTP then). */
  const end = useCallback((): boolean => {
    if (!stream.current?.open) return false;
    stream.current.control("end");
    return true;
  }, []);

  return { state, start, stop: hangUp, interrupt, end };
}
