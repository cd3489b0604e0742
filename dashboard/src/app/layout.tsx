import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";

import "./globals.css";
import { Providers } from "./providers";

export const metadata: Metadata = {
  title: { default: "AImPact", template: "%s · AImPact" },
  description: "Runs, agents, pipelines and the optimizer of AImPact.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

/** Applied before the first paint: the stored theme, else the system's. */
const THEME = `(function(){try{var t=localStorage.getItem("aimpact-theme");if(t!=="light"&&t!=="dark"){t=matchMedia("(prefers-color-scheme: dark)").matches?"dark":"light"}document.documentElement.dataset.theme=t}catch(e){}})()`;

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: THEME }} />
      </head>
      <body>
        <Providers>{children}</Providers>
      </body>
    </html>
  );
}
