"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useEffect, useState, type ReactNode } from "react";

import { ThemeToggle } from "@/components/ThemeToggle";
import { Button } from "@/components/ui/Button";
import { allowed, NAV } from "@/components/nav";
import { useMe } from "@/lib/auth";
import { signOut } from "@/lib/session";

export function AppShell({ children }: { children: ReactNode }) {
  const me = useMe();
  const pathname = usePathname();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [pathname]);
  const items = allowed(NAV, me.permissions);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <div className="topbar">
        <button type="button" className="btn btn-sm menu-toggle" aria-expanded={open} aria-controls="sidebar" onClick={() => setOpen(!open)}>
          ☰ Menu
        </button>
        <Link href="/runs" prefetch={false} className="brand">
          AImPact
        </Link>
      </div>
      <div className="shell">
        <aside id="sidebar" className="sidebar" data-open={open}>
          <Link href="/runs" prefetch={false} className="brand hide-sm">
            AImPact
          </Link>
          <nav aria-label="Main">
            <ul className="nav">
              {items.map((item) => (
                <li key={item.href}>
                  <Link href={item.href} prefetch={false} aria-current={pathname.startsWith(item.href) ? "page" : undefined}>
                    {item.label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="sidebar-foot">
            <div className="who">
              <div>{me.email ?? me.api_key_id}</div>
              <div>
                role <strong>{me.role}</strong>
              </div>
            </div>
            <div className="row">
              <ThemeToggle />
              <Button size="sm" onClick={() => void signOut()}>
                Sign out
              </Button>
            </div>
            <a className="small" href="/docs" target="_blank" rel="noreferrer">
              API explorer ↗
            </a>
          </div>
        </aside>
        <main id="main" className="main" tabIndex={-1}>
          {items.length === 0 ? (
            <div className="alert alert-info">
              This account ({me.role}) has no tenant pages: platform administrators manage tenants through the API
              (<code>/v1/tenants</code>) and the CLI.
            </div>
          ) : (
            children
          )}
        </main>
      </div>
    </>
  );
}
