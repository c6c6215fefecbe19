// mmap of a BAR through the bridge: vfio-pci's ->mmap hands out the function's BAR memory, which
// the hardware model allocates with allocDeviceMemory, so the daemon shares it with the client (a
// memfd both map); the mapping keeps the file open until munmap.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { GenericPciHw } from '../src/drivers/pci/hw/generic.js';
import { Bridge, buildClients } from './bridge_helpers.js';
import { E1000E } from './helpers.js';

test('a BAR mmapped by a real program is the BAR memory the device model sees', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-mmap-'));
  const bins = buildClients(dir);
  const b = new Bridge();
  try {
    const hw = pciGetDevice(b.host.kernel, E1000E.bdf)!.hw;
    assert.ok(hw instanceof GenericPciHw);
    const r = await b.run(bins.mmap_client!, []);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${b.log.join('\n')}`);
    assert.match(r.stdout, /ok mmap/);
    assert.ok(!b.log.some((l) => /not from allocDeviceMemory|no memory/.test(l)), b.log.join('\n'));
    // the close after munmap reset the function (PM reset): its BAR memory is back to zeros
    await b.settle();
    assert.equal(b.daemon.openFiles, 0);
    assert.deepEqual([...hw.barMemory(0)!.subarray(0x10, 0x24)], new Array(0x14).fill(0));
  } finally {
    b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
