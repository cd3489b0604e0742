"use client";
/** Who is signed in and what they may do (`GET /v1/me`), for the whole console. */
import { useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

import { api, call } from "@/api/client";
import type { Me } from "@/api/types";
import { currentToken, onSessionChange } from "@/lib/session";

type Auth =
  | { status: "loading" }
  | { status: "signed-out" }
  | { status: "signed-in"; me: Me };

type AuthContextValue = { auth: Auth; reload: () => Promise<void> };

const AuthContext = createContext<AuthContextValue>({ auth: { status: "loading" }, reload: async () => undefined });

export function AuthProvider({ children }: { children: ReactNode }) {
  const [auth, setAuth] = useState<Auth>({ status: "loading" });
  const queries = useQueryClient();
  const reload = useCallback(async () => {
    if (!(await currentToken())) {
      setAuth({ status: "signed-out" });
      return;
    }
    try {
      setAuth({ status: "signed-in", me: await call(api.GET("/v1/me")) });
    } catch {
      setAuth({ status: "signed-out" });
    }
  }, []);
  useEffect(() => {
    void reload();
    return onSessionChange((signedIn) => {
      if (!signedIn) {
        queries.clear();
        setAuth({ status: "signed-out" });
      }
    });
  }, [reload, queries]);
  const value = useMemo(() => ({ auth, reload }), [auth, reload]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export const useAuth = () => useContext(AuthContext);

/** The signed-in caller (inside the console, where sign-in is guaranteed). */
export function useMe(): Me {
  const { auth } = useAuth();
  if (auth.status !== "signed-in") throw new Error("useMe outside a signed-in console");
  return auth.me;
}

/** Whether the caller's role grants `permission`: the UI offers only what the API would allow. */
export function useCan(permission: string): boolean {
  const { auth } = useAuth();
  return auth.status === "signed-in" && auth.me.permissions.includes(permission);
}
