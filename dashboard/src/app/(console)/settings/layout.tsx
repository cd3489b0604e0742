"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";

import { allowed, SETTINGS_NAV } from "@/components/nav";
import { PageHeader } from "@/components/ui/Misc";
import { useMe } from "@/lib/auth";

export default function SettingsLayout({ children }: { children: ReactNode }) {
  const me = useMe();
  const pathname = usePathname();
  const mine = allowed(SETTINGS_NAV, me.permissions);
  const section = SETTINGS_NAV.find((item) => pathname.startsWith(item.href));
  const permitted = !section || mine.includes(section);
  return (
    <>
      <PageHeader title="Settings" description={`Tenant ${me.tenant_id ?? ""}`} />
      <nav className="tabs" aria-label="Settings sections">
        {mine.map((item) => (
          <Link key={item.href} href={item.href} aria-current={pathname.startsWith(item.href) ? "page" : undefined}>
            {item.label}
          </Link>
        ))}
      </nav>
      {permitted ? children : <p className="muted">Your role cannot manage {section?.label.toLowerCase()}.</p>}
    </>
  );
}
