/**
 * The browser session: the access token lives in this module's memory only; the refresh token is
 * the API's HttpOnly, SameSite=Strict cookie (`/v1/auth/session`), which no script can read.
 *
 * Refreshes are serialised across tabs with the Web Locks API: the cookie rotates on every
 * refresh and presenting a spent one revokes the whole session, so two tabs must never send the
 * same cookie at once. Sign-out is broadcast to the other tabs.
 */

export type AccessToken = { access_token: string; expires_in: number };

const LOCK = "aimpact-session-refresh";
const CHANNEL = "aimpact-session";
const EARLY_S = 30;

let token: string | null = null;
let expiresAt = 0;
let inFlight: Promise<string | null> | null = null;
const listeners = new Set<(signedIn: boolean) => void>();
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel(CHANNEL);
channel?.addEventListener("message", (event: MessageEvent<string>) => {
  if (event.data === "signed-out") forget(false);
});

function keep(answer: AccessToken): string {
  token = answer.access_token;
  expiresAt = Date.now() + answer.expires_in * 1000;
  return token;
}

function forget(broadcast: boolean): void {
  const had = token !== null;
  token = null;
  expiresAt = 0;
  if (broadcast) channel?.postMessage("signed-out");
  if (had || broadcast) listeners.forEach((listener) => listener(false));
}

/** Subscribe to sign-in / sign-out; returns the unsubscribe function. */
export function onSessionChange(listener: (signedIn: boolean) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  return locks ? locks.request(LOCK, work) : work();
}

/** Trade the session cookie for a new access token (the cookie rotates); `null` when signed out. */
export function refresh(): Promise<string | null> {
  inFlight ??= exclusive(async () => {
    const response = await fetch("/v1/auth/session/refresh", { method: "POST", credentials: "same-origin" });
    if (!response.ok) {
      forget(false);
      return null;
    }
    const fresh = keep((await response.json()) as AccessToken);
    listeners.forEach((listener) => listener(true));
    return fresh;
  }).finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/** A token valid for at least a few more seconds, refreshed first when it is about to expire. */
export async function currentToken(): Promise<string | null> {
  if (token && Date.now() < expiresAt - EARLY_S * 1000) return token;
  return refresh();
}

export class SignInError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

/** Sign in with email and password; the API sets the session cookie. */
export async function signIn(email: string, password: string): Promise<void> {
  const response = await fetch("/v1/auth/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { detail?: string };
    const retry = response.headers.get("Retry-After");
    throw new SignInError(response.status, problem.detail ?? response.statusText, retry ? Number(retry) : null);
  }
  keep((await response.json()) as AccessToken);
  listeners.forEach((listener) => listener(true));
}

/** End the session here and in every other tab. */
export async function signOut(): Promise<void> {
  try {
    await fetch("/v1/auth/session/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    forget(true);
  }
}
