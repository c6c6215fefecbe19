// `vfiosim exec` and `vfiosim serve`: run a real program against the model with the shim
// preloaded, with a daemon of its own or one already serving.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../host/host.js';
import { BridgeDaemon } from './daemon.js';
import { SHIM_PATH, ensureNative, loadAddon } from './native.js';
import { MAX_MSG, Op, RESP_HEADER, encodeRequest } from './protocol.js';

/** The per-user default socket: $XDG_RUNTIME_DIR/vfiosim.sock, else /tmp/vfiosim-UID/vfiosim.sock. */
export function defaultSocketPath(): string {
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'vfiosim.sock');
  const uid = process.getuid ? process.getuid() : 0;
  return join(tmpdir(), `vfiosim-${uid}`, 'vfiosim.sock');
}

export interface DaemonInfo {
  pid: number;
  host: string;
  paths: string[];
}

/** Ask whatever listens at `path` who it is (null: nothing answers there). */
export function probeDaemon(path: string): DaemonInfo | null {
  const n = loadAddon();
  const fd = n.connect(path);
  if (fd < 0) return null;
  try {
    const req = encodeRequest({ op: Op.INFO });
    const out = Buffer.alloc(MAX_MSG);
    const r = n.call(fd, req, req.length, out);
    if (r < RESP_HEADER) return null;
    const len = out.readUInt32LE(8);
    const [pid, host, ...paths] = out.toString('utf8', RESP_HEADER, RESP_HEADER + len).split('\n');
    return { pid: Number(pid), host: host ?? '', paths };
  } finally {
    n.close(fd);
  }
}

/** The environment a program needs to reach a daemon through the shim. */
export function shimEnv(socketPath: string, info: DaemonInfo, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const pre = base.LD_PRELOAD ? `${SHIM_PATH} ${base.LD_PRELOAD}` : SHIM_PATH;
  return {
    ...base,
    LD_PRELOAD: pre,
    VFIOSIM_SOCKET: socketPath,
    VFIOSIM_PATHS: info.paths.join(':'),
    VFIOSIM_DAEMON_PID: String(info.pid),
  };
}

export class ExecError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface ExecOptions {
  /** the host to serve when a daemon is started here */
  host: () => Host;
  /** whether the host was asked for explicitly (a reused daemon must serve a host of that name) */
  hostName?: string;
  /** a socket path given with --socket (or $VFIOSIM_SOCKET) */
  socketPath?: string;
  argv: string[];
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** where the program's stdio goes (default inherit) */
  stdio?: 'inherit' | 'pipe';
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
}

/**
 * Run a program with the shim: reuse the daemon listening at the socket path, or start one in
 * this process for the program's lifetime (at the given path, else a private one). Resolves to
 * the program's exit status (128 + signal number if a signal ended it).
 */
export async function execProgram(o: ExecOptions): Promise<number> {
  ensureNative();
  const explicit = o.socketPath ?? process.env.VFIOSIM_SOCKET;
  const shared = explicit ?? defaultSocketPath();
  let info = probeDaemon(shared);
  let daemon: BridgeDaemon | null = null;
  let tmp: string | null = null;
  let socketPath = shared;
  if (info) {
    if (o.hostName !== undefined && info.host !== o.hostName)
      throw new ExecError(`the daemon at ${shared} serves host "${info.host}", not "${o.hostName}" (stop it, or pass --socket)`, 2);
  } else {
    if (explicit) socketPath = explicit;
    else {
      tmp = mkdtempSync(join(tmpdir(), 'vfiosim-'));
      socketPath = join(tmp, 'vfiosim.sock');
    }
    daemon = new BridgeDaemon(o.host(), { socketPath, ...(o.log ? { log: o.log } : {}) });
    daemon.start();
    info = { pid: process.pid, host: daemon.host.topology.name, paths: daemon.paths };
  }
  const [prog, ...args] = o.argv;
  if (!prog) throw new ExecError('exec needs a PROGRAM', 2);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(prog, args, { stdio: o.stdio ?? 'inherit', env: shimEnv(socketPath, info!, o.env ?? process.env) });
      o.onSpawn?.(child);
      const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
      const handlers: Array<[NodeJS.Signals, () => void]> = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)]);
      for (const [s, h] of handlers) process.on(s, h);
      const done = () => {
        for (const [s, h] of handlers) process.off(s, h);
      };
      child.on('error', (e: NodeJS.ErrnoException) => {
        done();
        if (e.code === 'ENOENT') reject(new ExecError(`${prog}: not found`, 127));
        else if (e.code === 'EACCES') reject(new ExecError(`${prog}: permission denied`, 126));
        else reject(e);
      });
      child.on('exit', (code, signal) => {
        done();
        if (signal) {
          resolve(128 + ((osConstants.signals as Record<string, number>)[signal] ?? 0));
        } else resolve(code ?? 1);
      });
    });
  } finally {
    daemon?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}


/** `vfiosim serve`: listen until SIGINT or SIGTERM. */
export function serve(host: Host, socketPath: string | undefined, log?: (line: string) => void): Promise<number> {
  ensureNative();
  const path = socketPath ?? process.env.VFIOSIM_SOCKET ?? defaultSocketPath();
  if (!socketPath && !process.env.VFIOSIM_SOCKET && !process.env.XDG_RUNTIME_DIR) {
    mkdirSync(join(tmpdir(), `vfiosim-${process.getuid ? process.getuid() : 0}`), { recursive: true, mode: 0o700 });
  }
  const other = probeDaemon(path);
  if (other) throw new ExecError(`a daemon (pid ${other.pid}, host "${other.host}") already listens at ${path}`, 2);
  const daemon = new BridgeDaemon(host, { socketPath: path, ...(log ? { log } : {}) });
  daemon.start();
  process.stderr.write(`vfiosim: serving host "${host.topology.name}" on ${path} (pid ${process.pid}); programs: VFIOSIM_SOCKET=${path} vfiosim exec -- PROGRAM\n`);
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      daemon.stop();
      resolve(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
