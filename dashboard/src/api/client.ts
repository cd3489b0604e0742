/** The typed API client: openapi-fetch over the generated schema, with the session's bearer token. */
import createClient from "openapi-fetch";

import { currentToken, refresh } from "@/lib/session";
import type { components, paths } from "./schema";

export type Problem = components["schemas"]["Problem"];

/** A problem+json answer (RFC 9457) as an exception. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem>,
  ) {
    super(problem.detail ?? `HTTP ${status}`);
  }

  /** The message of the invalid field `field`, if the API named it. */
  fieldError(field: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === field || e.field.endsWith(`/${field}`))?.message;
  }
}

async function authorised(request: Request): Promise<Response> {
  const retry = request.clone();
  const send = async (req: Request, bearer: string | null) => {
    if (bearer) req.headers.set("Authorization", `Bearer ${bearer}`);
    return fetch(req);
  };
  const response = await send(request, await currentToken());
  if (response.status !== 401) return response;
  const fresh = await refresh();
  return fresh ? send(retry, fresh) : response;
}

export const api = createClient<paths>({ baseUrl: "", fetch: authorised });

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The data of an answer, or an {@link ApiError}. */
export async function call<T>(pending: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok) {
    const problem = (typeof error === "object" && error !== null ? error : { detail: String(error ?? "") }) as Partial<Problem>;
    throw new ApiError(response.status, problem);
  }
  return data as T;
}

/** The bearer header for requests openapi-fetch does not make (event streams). */
export async function bearer(): Promise<Record<string, string>> {
  const token = await currentToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A GET of an API path with the session's bearer token, for answers that are not JSON (recordings). */
export function authorisedGet(path: string): Promise<Response> {
  return authorised(new Request(path));
}
