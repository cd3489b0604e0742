"use client";
import { useRouter } from "next/navigation";
import { useEffect } from "react";

import { allowed, SETTINGS_NAV } from "@/components/nav";
import { Loading } from "@/components/ui/Feedback";
import { useMe } from "@/lib/auth";

export default function SettingsIndex() {
  const me = useMe();
  const router = useRouter();
  const first = allowed(SETTINGS_NAV, me.permissions)[0];
  useEffect(() => {
    if (first) router.replace(first.href);
  }, [first, router]);
  return first ? <Loading /> : <p className="muted">Your role has no settings to manage.</p>;
}
