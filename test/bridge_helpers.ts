// Helpers of the bridge tests: build test/c clients with cc, start a daemon on a fresh host,
// run a real program with the shim against it.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../src/api/index.js';
import { BridgeDaemon } from '../src/bridge/daemon.js';
import { shimEnv } from '../src/bridge/exec.js';
import { PACKAGE_ROOT, ensureNative } from '../src/bridge/native.js';

export const C_DIR = join(PACKAGE_ROOT, 'test', 'c');

/** Compile every test/c/*.c (except helpers) into dir; returns name -> binary path. */
export function buildClients(dir: string): Record<string, string> {
  ensureNative();
  const out: Record<string, string> = {};
  for (const f of readdirSync(C_DIR).filter((x) => x.endsWith('.c'))) {
    const name = f.slice(0, -2);
    const bin = join(dir, name);
    execFileSync('cc', ['-std=gnu11', '-O1', '-Wall', '-Werror', '-o', bin, join(C_DIR, f), '-lpthread'], { stdio: ['ignore', 'ignore', 'pipe'] });
    out[name] = bin;
  }
  return out;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class Bridge {
  readonly host: Host;
  readonly daemon: BridgeDaemon;
  readonly dir: string;
  readonly log: string[] = [];
  constructor(topology?: string) {
    this.host = topology ? new Host(topology) : new Host();
    this.dir = mkdtempSync(join(tmpdir(), 'vfiosim-test-'));
    this.daemon = new BridgeDaemon(this.host, { socketPath: join(this.dir, 'd.sock'), log: (l) => this.log.push(l) });
    this.daemon.start();
  }

  env(): NodeJS.ProcessEnv {
    return shimEnv(this.daemon.socketPath, { pid: process.pid, host: this.host.topology.name, paths: this.daemon.paths });
  }

  /** Run a program under the shim (asynchronously: the daemon answers on this event loop). */
  run(prog: string, args: string[] = [], timeoutMs = 60_000): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(prog, args, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  /** Let pending hang-ups reach the daemon (the event loop turns once or twice). */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }

  close(): void {
    this.daemon.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
