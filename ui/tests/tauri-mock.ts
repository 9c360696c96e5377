// A fake Rust side for tests: vi.mock("@tauri-apps/api/core") and
// vi.mock("@tauri-apps/api/event") route to these.

type Handler = (args: Record<string, unknown> | undefined) => unknown;

export const backend = {
  handlers: {} as Record<string, Handler>,
  listeners: new Map<string, ((e: { payload: unknown }) => void)[]>(),
  calls: [] as { cmd: string; args: Record<string, unknown> | undefined }[],
  reset(): void {
    this.handlers = {};
    this.listeners.clear();
    this.calls = [];
  },
  emit(event: string, payload: unknown): void {
    for (const f of this.listeners.get(event) ?? []) f({ payload });
  },
  callsTo(cmd: string) {
    return this.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
  },
};

export function invoke(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
  backend.calls.push({ cmd, args });
  const f = backend.handlers[cmd];
  if (!f) return Promise.reject({ message: `no handler for ${cmd}`, hint: null });
  try {
    return Promise.resolve(f(args));
  } catch (e) {
    return Promise.reject(e);
  }
}

export async function listen(event: string, f: (e: { payload: unknown }) => void): Promise<() => void> {
  const list = backend.listeners.get(event) ?? [];
  list.push(f);
  backend.listeners.set(event, list);
  return () => {
    const l = backend.listeners.get(event) ?? [];
    backend.listeners.set(
      event,
      l.filter((g) => g !== f),
    );
  };
}
