// The bridge's native parts: the LD_PRELOAD shim and the daemon's N-API addon, built on demand
// with the machine's cc (shim/build.sh) and loaded from dist/native.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is dist/src/bridge/native.js). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NATIVE_DIR = process.env.VFIOSIM_NATIVE_DIR ?? join(PACKAGE_ROOT, 'dist', 'native');
export const SHIM_PATH = join(NATIVE_DIR, 'libvfiosim-shim.so');
export const ADDON_PATH = join(NATIVE_DIR, 'bridge.node');

const SOURCES = ['shim/vfiosim_shim.c', 'shim/protocol.h', 'native/bridge_addon.c', 'shim/build.sh'].map((p) =>
  join(PACKAGE_ROOT, p),
);

/** What the addon offers (native/bridge_addon.c). Every call returns a result >= 0 or -errno. */
export interface Addon {
  listen(path: string): number;
  accept(fd: number): number;
  connect(path: string): number;
  socketpair(abstractName: string): [number, number] | number;
  recv(fd: number, buf: Uint8Array, creds: Int32Array): number;
  send(fd: number, buf: Uint8Array, len: number, passFd: number): number;
  call(fd: number, buf: Uint8Array, len: number, out: Uint8Array): number;
  close(fd: number): number;
  vmRead(pid: number, addr: number, buf: Uint8Array, len: number): number;
  vmWrite(pid: number, addr: number, buf: Uint8Array, len: number): number;
  pidfdOpen(pid: number): number;
  pidfdGetfd(pidfd: number, fd: number): number;
  memfdBuffer(name: string, size: number): [number, ArrayBuffer] | number;
  epollCreate(): number;
  epollAdd(ep: number, fd: number, events: number, tag: number): number;
  epollDel(ep: number, fd: number): number;
  epollDrain(ep: number, out: Int32Array): number;
  watch(fd: number, cb: () => void): number;
  unwatch(fd: number): number;
}

function stale(): boolean {
  if (!existsSync(SHIM_PATH) || !existsSync(ADDON_PATH)) return true;
  const built = Math.min(statSync(SHIM_PATH).mtimeMs, statSync(ADDON_PATH).mtimeMs);
  return SOURCES.some((s) => existsSync(s) && statSync(s).mtimeMs > built);
}

/** Build the shim and the addon if they are missing or older than their sources. */
export function ensureNative(): void {
  if (!stale()) return;
  const script = join(PACKAGE_ROOT, 'shim', 'build.sh');
  if (!existsSync(script)) throw new Error(`the bridge's native parts are missing and ${script} is not there to build them`);
  try {
    execFileSync('bash', [script, NATIVE_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
    throw new Error(`building the shim failed (shim/build.sh):\n${err}`);
  }
}

let addon: Addon | null = null;

export function loadAddon(): Addon {
  if (addon) return addon;
  ensureNative();
  const req = createRequire(import.meta.url);
  addon = req(ADDON_PATH) as Addon;
  return addon;
}
