"use client";
import type { ButtonHTMLAttributes } from "react";

type Props = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: "primary" | "secondary" | "danger" | "ghost";
  size?: "sm" | "md";
  busy?: boolean;
};

export function Button({ variant = "secondary", size = "md", busy = false, className, children, disabled, ...rest }: Props) {
  const classes = ["btn", variant !== "secondary" && `btn-${variant}`, size === "sm" && "btn-sm", className].filter(Boolean);
  return (
    <button type="button" className={classes.join(" ")} disabled={disabled || busy} aria-busy={busy || undefined} {...rest}>
      {busy && <span className="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}
