// Entry point: the real Tauri commands and the native folder dialog.

import { open } from "@tauri-apps/plugin-dialog";
import { api } from "./api";
import { mountApp } from "./app";
import "./style.css";

async function pickFolder(): Promise<string | null> {
  const picked = await open({ directory: true, multiple: false, title: "Add a repository" });
  return typeof picked === "string" ? picked : null;
}

const root = document.getElementById("app");
if (root) void mountApp(root, { api, pickFolder });
