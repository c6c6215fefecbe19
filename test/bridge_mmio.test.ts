// Trapped BAR mappings through the bridge: a real C program (test/c/mmio_trap.c) maps the edu
// function's register BAR; every load and store faults in the shim, is forwarded to the daemon
// and reaches the device model synchronously (as the in-process mapping's vm_ops do).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { EduPciHw } from '../src/drivers/pci/hw/edu.js';
import { Bridge, buildClients } from './bridge_helpers.js';

let bins: Record<string, string>;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiosim-mmio-'));
  bins = buildClients(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function mode(m: string, check: (b: Bridge) => void): Promise<void> {
  const b = new Bridge();
  try {
    const r = await b.run(bins.mmio_trap!, [m]);
    assert.equal(r.code, 0, `mmio_trap ${m} failed:\n${r.stdout}${r.stderr}\ndaemon:\n${b.log.slice(-30).join('\n')}`);
    assert.equal(r.stdout, `ok ${m}\n`);
    await b.settle();
    assert.equal(b.daemon.openFiles, 0, 'files still open after the program exited');
    assert.equal(b.daemon.regionMappings, 0, 'mapping records outlive their file');
    assert.deepEqual(b.host.kernel.warnings, []);
    check(b);
  } finally {
    b.close();
  }
}

describe('trapped BAR mappings (edu registers)', () => {
  test('loads and stores reach the model one by one: identification, liveness, factorial, widths, instruction forms, DMA, fork', () =>
    mode('basic', (b) => {
      const hw = pciGetDevice(b.host.kernel, '0000:03:00.0')!.hw as EduPciHw;
      assert.ok(hw instanceof EduPciHw);
      // the child's store of 7 was the last to the liveness register
      assert.equal(hw.addr4, ~7 >>> 0);
      // the two DMA transfers ran (and faulted nowhere)
      assert.equal(hw.dmaFaults, 0);
      assert.deepEqual([...hw.dmaBuf.subarray(0, 4)], [1, 8, 15, 22]);
      // one forwarded access per load or store (a few dozen), none served from the shadow
      assert.ok(b.daemon.mmioAccesses >= 30 && b.daemon.mmioAccesses < 100, String(b.daemon.mmioAccesses));
    }));
  test('memory decoding off: SIGBUS; store to a read-only mapping: SIGSEGV; the program\'s SIGSEGV handler gets real faults', () =>
    mode('faults', () => {}));
  test('DMA mapping of the BAR mapping: iommufd EFAULT, type1 maps it (write needs a writable mapping)', () =>
    mode('dmamap', () => {}));
});
