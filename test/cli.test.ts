// The command line's own jobs: `vfiosim demo` (the README's main command), `run` on every shipped
// example, `host`, and the exit statuses and messages for bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PACKAGE_ROOT } from '../src/bridge/native.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

function vfiosim(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('cli: demo narrates both flows with the kernel events, every expectation met', () => {
  const r = vfiosim('demo', '--no-color');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^vfiosim demo - the VFIO device-access lifecycle of Linux 7\.2 on the default host$/);
  // the group flow's first device open runs open_device once; the second file does not
  assert.ok(r.stdout.includes('- open_device(0000:01:00.0)  [first open in bus 0000:01]'));
  assert.ok(r.stdout.includes('(a second file of the same device: no second open_device)'));
  assert.match(r.stdout, /ioctl\(group, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00\.0"\)\s+= 5\n/);
  assert.match(r.stdout, /\nSummary: \d+ steps, 0 failed expectation\(s\), 0 kernel warning\(s\)\n$/);
});

test('cli: run — every shipped example passes its own expectations', () => {
  const dir = join(PACKAGE_ROOT, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, `examples: ${files.join(', ')}`);
  for (const f of files) {
    const r = vfiosim('run', join(dir, f));
    assert.equal(r.code, 0, `${f}: ${r.stdout.slice(-400)}${r.stderr}`);
    assert.match(r.stdout, /Summary: \d+ steps, 0 failed expectation\(s\), 0 kernel warning\(s\)\n$/, f);
  }
});

test('cli: run — a failed expectation (also one naming an unbound variable) is exit 1 and says why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-cli-'));
  try {
    const src = readFileSync(join(PACKAGE_ROOT, 'examples', 'cdev-flow.yaml'), 'utf8');
    assert.ok(src.includes('out: { out_devid: 1 }'));
    const f1 = join(dir, 'unbound.yaml');
    writeFileSync(f1, src.replace('out: { out_devid: 1 }', 'out: { out_devid: $nosuch }'));
    let r = vfiosim('run', f1);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stdout.includes('FAILED: no variable "nosuch" (define it with "as: nosuch")'), r.stdout);
    assert.match(r.stdout, /Summary: \d+ steps, 1 failed expectation\(s\), 0 kernel warning\(s\)\n$/);
    const f2 = join(dir, 'wrong.yaml');
    writeFileSync(f2, src.replace('out: { out_devid: 1 }', 'out: { out_devid: 7 }'));
    r = vfiosim('run', f2);
    assert.equal(r.code, 1);
    assert.ok(r.stdout.includes('FAILED: expected out_devid=7, got 1'), r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli: bad input is exit 2 with a message naming the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-cli-'));
  try {
    let r = vfiosim('run', join(dir, 'missing.yaml'));
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `vfiosim run: cannot read ${join(dir, 'missing.yaml')}: ENOENT\n`);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'steps:\n  - { app: bogus }\n');
    r = vfiosim('run', bad);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('steps[0]: unknown process "app"'), r.stderr);
    r = vfiosim('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /frobnicate/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli: host --json lists the default host, the IOAT function bound to vfio-pci with its cdev', () => {
  const r = vfiosim('host', '--json');
  assert.equal(r.code, 0, r.stderr);
  const h = JSON.parse(r.stdout) as { name: string; devices: Array<{ bdf: string; vendorDevice: string; driver: string | null; iommuGroup: number; vfio: { index: number; cdev: string; groupNode: string } | null }> };
  assert.equal(h.name, 'default');
  const ioat = h.devices.find((d) => d.bdf === '0000:00:09.0')!;
  assert.deepEqual(
    { vd: ioat.vendorDevice, drv: ioat.driver, g: ioat.iommuGroup, idx: ioat.vfio?.index, cdev: ioat.vfio?.cdev, node: ioat.vfio?.groupNode },
    { vd: '8086:2021', drv: 'vfio-pci', g: 16, idx: 8, cdev: '/dev/vfio/devices/vfio8', node: '/dev/vfio/16' },
  );
  const e1000e = h.devices.find((d) => d.bdf === '0000:01:00.0')!;
  assert.equal(e1000e.vfio?.cdev, '/dev/vfio/devices/vfio0');
  assert.equal(e1000e.iommuGroup, 6);
});
