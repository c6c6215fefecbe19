// The oracle's 47-step lifecycle (examples/lifecycle.c) replayed on the default host gives output
// byte-identical to the real kernel's (test/fixtures/lifecycle.out, from oracle-run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Host } from '../src/api/index.js';
import { lifecycleReplay } from './lifecycle_replay.js';

const expected = readFileSync(fileURLToPath(new URL('../../test/fixtures/lifecycle.out', import.meta.url)), 'utf8');

test('lifecycle: the 47 steps on the default host match the real kernel byte for byte', () => {
  const host = new Host();
  const out = lifecycleReplay(host, '/dev/vfio/devices/vfio0', '/dev/vfio/6', '0000:01:00.0');
  assert.equal(out, expected);
  assert.equal(host.kernel.warnings.length, 0, host.kernel.warnings.map((w) => w.message).join('\n'));
});

test('lifecycle: the replay leaves the host as it found it (no open device, no open group)', () => {
  const host = new Host();
  lifecycleReplay(host, '/dev/vfio/devices/vfio0', '/dev/vfio/6', '0000:01:00.0');
  const d = host.devices().find((x) => x.bdf === '0000:01:00.0')!;
  assert.equal(d.vfio!.openCount, 0);
  assert.equal(d.vfio!.registrationRefcount, 1);
  const g = host.groups().find((x) => x.id === 6)!;
  assert.deepEqual([g.open, g.container, g.iommufd, g.containerUsers, g.cdevDeviceOpenCnt, g.viable], [false, null, false, 0, 0, true]);
});
