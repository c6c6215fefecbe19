// The bridge's parts: the protocol (C header against TypeScript), the emulated paths, real
// eventfds signalled by the model, and the `vfiosim exec` / `serve` commands.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../src/api/index.js';
import { eventfdSignal } from '../src/kernel/eventfd.js';
import { KGen, Task } from '../src/kernel/sched.js';
import { DEFAULT_HOST_YAML } from '../src/host/default_host.js';
import { emulatedPaths } from '../src/bridge/daemon.js';
import { PACKAGE_ROOT, loadAddon } from '../src/bridge/native.js';
import * as P from '../src/bridge/protocol.js';
import { classifyFdLink, realEventfdFile } from '../src/bridge/remote.js';
import { buildClients } from './bridge_helpers.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

let bins: Record<string, string>;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiosim-bridge-'));
  bins = buildClients(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 180_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: dir };
  delete e.VFIOSIM_SOCKET;
  return e;
}

describe('protocol', () => {
  test('shim/protocol.h and src/bridge/protocol.ts agree', () => {
    const h = readFileSync(join(PACKAGE_ROOT, 'shim', 'protocol.h'), 'utf8');
    const num = (name: string) => {
      const m = new RegExp(`#define ${name} (\\d+)`).exec(h);
      assert.ok(m, name);
      return Number(m[1]);
    };
    assert.equal(num('VSIM_REQ_HEADER'), P.REQ_HEADER);
    assert.equal(num('VSIM_RESP_HEADER'), P.RESP_HEADER);
    assert.equal(num('VSIM_MAX_MSG'), P.MAX_MSG);
    assert.equal(num('VSIM_RESP_FD'), P.RESP_FD);
    assert.equal(num('VSIM_RESP_RET_IS_FD'), P.RESP_RET_IS_FD);
    assert.match(h, new RegExp(`#define VSIM_FILE_SOCKET_PREFIX "${P.FILE_SOCKET_PREFIX}"`));
    for (const [name, v] of Object.entries(P.Op)) {
      const m = new RegExp(`VSIM_OP_${name} = (\\d+)`).exec(h);
      assert.ok(m, `VSIM_OP_${name}`);
      assert.equal(Number(m[1]), v, name);
    }
    assert.match(h, /sizeof\(struct vsim_stat\) == 88/);
    assert.equal(P.STAT_WIRE, 88);
  });

  test('requests round-trip', () => {
    const b = P.encodeRequest({ op: P.Op.IOCTL, fd: 5, tid: 7, a0: 0x3b6bn, a1: 0x7fff0000n, path: '/dev/iommu' });
    const r = P.decodeRequest(b, b.length)!;
    assert.deepEqual(r, { op: 2, fd: 5, tid: 7, flags: 0, a0: 0x3b6bn, a1: 0x7fff0000n, a2: 0n, a3: 0n, path: '/dev/iommu' });
    assert.equal(P.decodeRequest(b, 10), null);
  });

  test('the emulated paths: device nodes and the sysfs trees of the simulated host, and the hidden debugfs', () => {
    const p = emulatedPaths(new Host().kernel);
    for (const x of ['/dev/vfio', '/dev/iommu', '/sys/bus/pci', '/sys/kernel/iommu_groups', '/sys/class/vfio-dev', '/sys/devices/pci0000:00', '/sys/module/vfio', '/sys/kernel/debug/iommu', '/sys/dev/char/248:0'])
      assert.ok(p.includes(x), x);
    // not the machine's own: /dev, /sys/devices/system, /dev/null's sysfs entry
    for (const x of ['/dev', '/sys', '/sys/devices', '/sys/class', '/sys/dev/char/1:3', '/proc']) assert.ok(!p.includes(x), x);
  });
});

describe('real eventfds', () => {
  test("the model's eventfd_signal on a client's eventfd (fetched with pidfd_getfd) signals it for real", async () => {
    const n = loadAddon();
    const child = spawn(bins.eventfd_holder!, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await new Promise<void>((r) => {
      const tick = () => (out.includes('\n') ? r() : setTimeout(tick, 5));
      tick();
    });
    const [pid, fd] = out.trim().split(' ').map(Number) as [number, number];
    assert.deepEqual(classifyFdLink(pid, fd), { kind: 'eventfd' });
    const pidfd = n.pidfdOpen(pid);
    assert.ok(pidfd >= 0);
    const copy = n.pidfdGetfd(pidfd, fd);
    assert.ok(copy >= 0, `pidfd_getfd: ${copy}`);
    n.close(pidfd);
    const host = new Host();
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    const { writeSync } = await import('node:fs');
    const f = realEventfdFile(host.kernel.anonInode, n, copy, (c) => writeSync(c, one));
    const ctx = f.privateData as import('../src/kernel/eventfd.js').EventfdCtx;
    const body = function* (): KGen<number> {
      yield* eventfdSignal(ctx);
      return 0;
    };
    host.kernel.runToCompletion(new Task(host.kernel, 'signal', body()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0);
    assert.match(out, /signalled 1/);
    assert.equal(ctx.signals, 1);
  });
});

describe('vfiosim exec', () => {
  test('an unmodified program (coreutils) sees the simulated sysfs and /dev/vfio', async () => {
    const r = await cli(['exec', '--', 'sh', '-c', 'cat /sys/bus/pci/devices/0000:01:00.0/vendor; ls /dev/vfio/devices; readlink /sys/bus/pci/devices/0000:01:00.0/iommu_group'], cleanEnv());
    assert.equal(r.code, 0, r.stderr);
    // the default host's vfio-pci functions, vfio0 upwards (ls sorts them as strings)
    const cdevs = new Host()
      .devices()
      .filter((d) => d.vfio?.cdev)
      .map((d) => `vfio${d.vfio!.index}`)
      .sort();
    assert.ok(cdevs.length >= 8);
    assert.equal(r.stdout, `0x8086\n${cdevs.join('\n')}\n../../../../kernel/iommu_groups/6\n`);
  });

  test('exit status: the program\'s, 128+N for a signal, 127 when not found, 2 for bad usage', async () => {
    assert.equal((await cli(['exec', '--', 'sh', '-c', 'exit 3'], cleanEnv())).code, 3);
    assert.equal((await cli(['exec', '--', 'sh', '-c', 'kill -9 $$'], cleanEnv())).code, 137);
    const nf = await cli(['exec', '--', '/nonexistent/program'], cleanEnv());
    assert.equal(nf.code, 127);
    assert.match(nf.stderr, /vfiosim exec: \/nonexistent\/program: not found/);
    const u = await cli(['exec'], cleanEnv());
    assert.equal(u.code, 2);
    assert.match(u.stderr, /exec needs a PROGRAM/);
    assert.equal((await cli(['exec', '--host', join(dir, 'missing.yaml'), '--', 'true'], cleanEnv())).code, 2);
    const h = await cli(['exec', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /usage: vfiosim exec/);
  });

  test('--host: the program sees that topology', async () => {
    const topo = join(dir, 'small.yaml');
    writeFileSync(
      topo,
      DEFAULT_HOST_YAML.replace(/^name: .*$/m, 'name: small-test'),
    );
    const r = await cli(['exec', '--host', topo, '--', 'cat', '/sys/bus/pci/devices/0000:01:00.0/device'], cleanEnv());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0x10d3\n');
  });

  test('serve: several programs share one daemon (one holds the group, another gets EBUSY)', async () => {
    const sock = join(dir, 'shared.sock');
    const env = cleanEnv();
    const server = spawn(process.execPath, [CLI, 'serve', '--socket', sock], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    server.stderr.on('data', (b: Buffer) => (err += b.toString()));
    try {
      for (let i = 0; i < 200 && !err.includes('serving'); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(err, /serving host "default" on/);
      assert.ok(existsSync(sock));
      // program 1 holds the group open (sleeping); program 2, through the same daemon, gets EBUSY
      const holder = spawn(process.execPath, [CLI, 'exec', '--socket', sock, '--', 'sh', '-c', 'exec 3<>/dev/vfio/6; echo held; sleep 2'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let held = '';
      holder.stdout.on('data', (b: Buffer) => (held += b.toString()));
      for (let i = 0; i < 200 && !held.includes('held'); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(held, /held/);
      const busy = await cli(['exec', '--socket', sock, '--', 'sh', '-c', 'exec 3<>/dev/vfio/6'], env);
      assert.notEqual(busy.code, 0);
      assert.match(busy.stderr, /Device or resource busy/);
      // a second `serve` on the same socket refuses
      const again = await cli(['serve', '--socket', sock], env);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /already listens/);
      await new Promise((r) => holder.on('close', r));
      const free = await cli(['exec', '--socket', sock, '--', 'sh', '-c', 'exec 3<>/dev/vfio/6 && echo opened'], env);
      assert.equal(free.code, 0, free.stderr);
      assert.equal(free.stdout, 'opened\n');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.on('close', r));
    }
    assert.ok(!existsSync(sock), 'the socket is removed when serve stops');
  });
});
