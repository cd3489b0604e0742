"use client";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, type ReactNode } from "react";

import { AppShell } from "@/components/AppShell";
import { Loading } from "@/components/ui/Feedback";
import { useAuth } from "@/lib/auth";

/** Every console page: signed-in only (else to the sign-in page, coming back afterwards). */
export default function ConsoleLayout({ children }: { children: ReactNode }) {
  const { auth } = useAuth();
  const router = useRouter();
  const pathname = usePathname();
  useEffect(() => {
    if (auth.status === "signed-out") {
      const next = `${pathname}${window.location.search}`;
      router.replace(`/sign-in?next=${encodeURIComponent(next)}`);
    }
  }, [auth.status, pathname, router]);
  if (auth.status !== "signed-in") {
    return (
      <div className="center-page">
        <Loading label={auth.status === "loading" ? "Loading…" : "Redirecting to sign-in…"} />
      </div>
    );
  }
  return <AppShell>{children}</AppShell>;
}
