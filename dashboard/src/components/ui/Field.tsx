"use client";
import { useId, type ReactElement, cloneElement } from "react";

type FieldProps = {
  label: string;
  hint?: string;
  error?: string;
  /** One form control; it gets the id, description and invalid state. */
  children: ReactElement<Record<string, unknown>>;
  className?: string;
};

/** A labelled control with its hint and error, wired for assistive technology. */
export function Field({ label, hint, error, children, className }: FieldProps) {
  const id = useId();
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
  return (
    <div className={["field", className].filter(Boolean).join(" ")}>
      <label htmlFor={id}>{label}</label>
      {cloneElement(children, { id, "aria-describedby": described, "aria-invalid": error ? true : undefined })}
      {hint && (
        <span id={`${id}-hint`} className="hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} className="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
