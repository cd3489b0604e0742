import type { NextConfig } from "next";
import { PHASE_DEVELOPMENT_SERVER } from "next/constants";

/** Paths the API serves; `npm run dev` proxies them to AIMPACT_API_URL so the browser sees one origin. */
const API_PATHS = ["/v1/:path*", "/openapi.json", "/docs", "/docs/:path*", "/healthz", "/readyz"];

export default function config(phase: string): NextConfig {
  const base: NextConfig = {
    reactStrictMode: true,
    poweredByHeader: false,
    images: { unoptimized: true },
  };
  if (phase === PHASE_DEVELOPMENT_SERVER) {
    const api = process.env.AIMPACT_API_URL ?? "http://127.0.0.1:8000";
    return {
      ...base,
      allowedDevOrigins: ["127.0.0.1"],
      compress: false, // a compressed proxy response would hold back the API's event streams
      async rewrites() {
        return API_PATHS.map((source) => ({ source, destination: `${api}${source}` }));
      },
    };
  }
  // The build is a static export (out/) that the API serves at `/`.
  return { ...base, output: "export" };
}
