"use client";
import { useRouter } from "next/navigation";
import { useEffect } from "react";

import { Loading } from "@/components/ui/Feedback";

export default function Home() {
  const router = useRouter();
  useEffect(() => router.replace("/runs"), [router]);
  return (
    <div className="center-page">
      <Loading />
    </div>
  );
}
