import { Field } from "@/components/ui/Field";

export const ROLES = ["viewer", "operator", "developer", "admin", "owner"] as const;
export type Role = (typeof ROLES)[number];

/** Roles up to the caller's own (no role can grant a role above its own). */
export function grantable(myRole: string): Role[] {
  const mine = ROLES.indexOf(myRole as Role);
  return mine < 0 ? [] : ROLES.slice(0, mine + 1);
}

export function RoleSelect({ value, onChange, myRole, label = "Role", error }: { value: Role; onChange: (r: Role) => void; myRole: string; label?: string; error?: string }) {
  return (
    <Field label={label} error={error}>
      <select value={value} onChange={(e) => onChange(e.target.value as Role)}>
        {grantable(myRole).map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
    </Field>
  );
}
