// Real C programs (test/c/*.c, built with cc) against the model through the daemon and the shim:
// file lifetime across close/dup/fork/exec/SCM_RIGHTS/exit/SIGKILL, processes racing for a group,
// concurrent ioctls, QEMU's and libvirt's patterns, EFAULT, and paths outside the emulated trees.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Bridge, buildClients } from './bridge_helpers.js';

let bins: Record<string, string>;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiosim-c-'));
  bins = buildClients(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Run one client mode on a fresh host; it must print "ok MODE" and exit 0. */
async function client(bin: string, args: string[], check?: (b: Bridge) => void): Promise<void> {
  const b = new Bridge();
  try {
    const r = await b.run(bins[bin]!, args);
    assert.equal(r.code, 0, `${bin} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}\ndaemon:\n${b.log.slice(-20).join('\n')}`);
    assert.match(r.stdout, new RegExp(`^ok ${args[0] ?? bin}`, 'm'));
    await b.settle();
    // every file the program opened has been released: nothing is left open in the model
    assert.equal(b.daemon.openFiles, 0, 'files still open in the daemon after the program exited');
    check?.(b);
  } finally {
    b.close();
  }
}

describe('file lifetime is the kernel\'s (the group opens only once the bound cdev file is gone)', () => {
  test('close', () => client('lifetime', ['close']));
  test('dup, dup2, dup3, F_DUPFD_CLOEXEC: one file, released with its last fd', () => client('lifetime', ['dup']));
  test('fork: the child keeps the file after the parent closes it; released at the child\'s exit', () =>
    client('lifetime', ['fork']));
  test('SCM_RIGHTS: the receiver keeps the file after the sender closes it', () => client('lifetime', ['scm']));
  test('an fd in flight in a socket is a reference until the socket goes', () => client('lifetime', ['inflight']));
  test('exec: an inherited fd is still the bound file in the new image; O_CLOEXEC files go at exec', () =>
    client('lifetime', ['exec']));
  test('SIGKILL mid-session (in an ioctl loop, holding a group): files released, model consistent', () =>
    client('sigkill', [], (b) => {
      assert.deepEqual(b.host.kernel.warnings, []);
      const d = b.host.devices().find((x) => x.bdf === '0000:01:00.0')!;
      assert.equal(d.vfio!.openCount, 0);
      assert.equal(b.host.groups().find((g) => g.id === 6)!.open, false);
    }));
});

describe('a client killed in the middle of a call that sleeps in the model', () => {
  test('SIGKILL during a sysfs unbind waiting for the device\'s user: the unbind finishes when the user closes, the model stays consistent', () =>
    client('sigkill', ['unbind'], (b) => {
      assert.deepEqual(b.host.kernel.warnings, []);
      const d = b.host.devices().find((x) => x.bdf === '0000:01:00.0')!;
      assert.equal(d.driver, 'vfio-pci'); // bound again at the end
      assert.equal(d.vfio!.openCount, 0);
    }));
});

describe('fds inside ioctl structs', () => {
  test("SET_CONTAINER, PCI_HOT_RESET's group fds and SET_IRQS's eventfds name the caller's own files; the model signals the real eventfd", () =>
    client('fds', []));
});

describe('concurrency', () => {
  test('processes racing for one group: one opens it, the others get EBUSY; threads and processes on one fd', () =>
    client('race', []));
});

describe('what real clients do', () => {
  test("QEMU's cdev lookup: vfio-dev readdir, dev file, fstat's st_rdev, iommu_group, realpath, statx", () =>
    client('clients', ['qemu']));
  test('stdio and sysfs: fopen/fgets/fscanf, lseek+read, scandir, access, openat, relative paths, writes', () =>
    client('clients', ['stdio']));
  test("libvirt: /dev/iommu and the cdev handed to QEMU across exec, and over SCM_RIGHTS (KubeVirt)", () =>
    client('clients', ['libvirt']));
  test('bad pointers in ioctl and read arguments give EFAULT (read-only page, unmapped page)', () =>
    client('clients', ['efault']));
  test('paths and fds outside the emulated trees behave as without the shim', () => client('clients', ['passthru']));
  test('the other glibc entry points: open64/__open_2/openat64, readv/preadv*/pwritev*, _chk forms, stat64, readdir64, scandirat, fdopen...', () =>
    client('clients', ['entry']));
});

describe('the kernel view of bridged calls', () => {
  test('each bridged syscall runs in a model process standing for the real one', async () => {
    const b = new Bridge();
    try {
      b.host.kernel.trace.record();
      const r = await b.run(bins.lifetime!, ['close']);
      assert.equal(r.code, 0, r.stderr);
      await b.settle();
      const ev = b.host.kernel.trace.events();
      const opens = ev.filter((e) => e.kind === 'syscall' && e.phase === 'exit' && e.name === 'open');
      assert.ok(opens.length >= 3);
      // the pid in the trace is the real program's
      const pids = new Set(opens.map((e) => e.pid));
      assert.equal(pids.size, 1);
      assert.ok([...pids][0]! > 0);
      const binds = ev.filter((e) => e.kind === 'syscall' && e.phase === 'exit' && e.name === 'ioctl' && String(e.args?.request).includes('BIND'));
      assert.equal(binds[0]?.ret, 0);
      assert.ok(ev.some((e) => e.kind === 'kernel' && e.name === 'close_device'), 'close_device after the last close');
    } finally {
      b.close();
    }
  });
});
