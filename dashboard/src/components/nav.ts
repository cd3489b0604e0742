/**
 * The console's pages, each shown only to roles holding one of its permissions; a new page joins the
 * navigation here. Detail pages (`/runs/detail`, `/voice/session`, …) are reached from their lists.
 */
export type NavItem = { href: string; label: string; anyOf: string[] };

export const NAV: NavItem[] = [
  { href: "/runs", label: "Runs", anyOf: ["runs:read"] },
  { href: "/agents", label: "Agents", anyOf: ["agents:read"] },
  { href: "/pipelines", label: "Pipelines", anyOf: ["pipelines:read"] },
  { href: "/voice", label: "Voice", anyOf: ["voice:read"] },
  { href: "/optimizer", label: "Optimizer", anyOf: ["optimizer:read"] },
  { href: "/recommendations", label: "Recommendations", anyOf: ["recommendations:read"] },
  { href: "/usage", label: "Usage", anyOf: ["usage:read"] },
  { href: "/memory", label: "Memory", anyOf: ["memory:read"] },
  { href: "/settings", label: "Settings", anyOf: ["keys:manage", "users:read", "webhooks:manage", "secrets:read", "audit:read"] },
];

export const SETTINGS_NAV: NavItem[] = [
  { href: "/settings/api-keys", label: "API keys", anyOf: ["keys:manage"] },
  { href: "/settings/users", label: "Users and roles", anyOf: ["users:read"] },
  { href: "/settings/webhooks", label: "Webhooks", anyOf: ["webhooks:manage"] },
  { href: "/settings/secrets", label: "Secrets", anyOf: ["secrets:read"] },
  { href: "/settings/audit", label: "Audit log", anyOf: ["audit:read"] },
];

export function allowed(items: NavItem[], permissions: string[]): NavItem[] {
  return items.filter((item) => item.anyOf.some((p) => permissions.includes(p)));
}
