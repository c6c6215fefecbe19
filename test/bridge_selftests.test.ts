// The selftest runner's logic (src/bridge/selftests.ts): which function each binary runs against,
// the kernel command line it needs, and how a result compares with the real kernel's.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Host } from '../src/api/index.js';
import { DEFAULT_HOST_YAML } from '../src/host/default_host.js';
import { PACKAGE_ROOT } from '../src/bridge/native.js';
import { SELFTEST_DRIVER_IDS, SPECS, SelftestResult, gate, markdown, selftestDevice, verdict, withCmdline } from '../src/bridge/selftests.js';

const spec = (t: string) => SPECS.find((s) => s.test === t)!;
const ORACLE_HOST = readFileSync(join(PACKAGE_ROOT, 'hosts', 'oracle-default.yaml'), 'utf8');

function result(test: string, o: Partial<SelftestResult>): SelftestResult {
  return { test, bdf: '0000:01:00.0', rc: 0, pass: 0, fail: 0, skip: 0, error: 0, envSkips: 0, seconds: 1, note: '', output: '', ...o };
}

describe('selftest devices', () => {
  test('the default host: e1000e for most, the SR-IOV PF for the sriov test, a library-driver function for the driver test', () => {
    const h = new Host();
    assert.equal(selftestDevice(h, spec('vfio_dma_mapping_test')), '0000:01:00.0');
    assert.equal(selftestDevice(h, spec('vfio_dma_mapping_test'), '0000:03:00.0'), '0000:03:00.0');
    const pf = selftestDevice(h, spec('vfio_pci_sriov_uapi_test'));
    assert.equal(pf, '0000:04:00.0'); // igb0, the 82576 PF with an SR-IOV capability
    const drv = selftestDevice(h, spec('vfio_pci_driver_test'));
    const want = h.devices().find((d) => d.driver === 'vfio-pci' && SELFTEST_DRIVER_IDS.includes(d.vendorDevice))?.bdf ?? null;
    assert.equal(drv, want);
  });

  test("the oracle's recorded host has neither a PF nor an IOAT/DSA: those binaries are not run", () => {
    const h = new Host(ORACLE_HOST);
    assert.equal(selftestDevice(h, spec('vfio_iommufd_setup_test')), '0000:01:00.0');
    assert.equal(selftestDevice(h, spec('vfio_pci_sriov_uapi_test')), null);
    assert.equal(selftestDevice(h, spec('vfio_pci_driver_test')), null);
  });

  test('kernel.cmdline: added to the default host, appended to a recorded host\'s, a kernel section made; the host boots with it', () => {
    const y = withCmdline(DEFAULT_HOST_YAML, 'vfio_pci.enable_sriov=1');
    const h = new Host(y);
    assert.deepEqual(h.topology.kernel.cmdline, [{ param: 'vfio_pci.enable_sriov', value: '1' }]);
    assert.equal(h.topology.functions.length, new Host().topology.functions.length);
    // a recorded host boots with the module parameters it was recorded with, after kernel.cmdline's
    const before = new Host(ORACLE_HOST).topology.kernel.cmdline;
    assert.ok(before.length > 0 && !before.some((c) => c.param === 'vfio_pci.enable_sriov'));
    const o = new Host(withCmdline(ORACLE_HOST, 'vfio_pci.enable_sriov=1'));
    assert.deepEqual(o.topology.kernel.cmdline, [{ param: 'vfio_pci.enable_sriov', value: '1' }, ...before]);
    assert.equal(o.topology.kernel.vfioMajor, 249);
    const twice = new Host(withCmdline(y, 'vfio_pci.nointxmask=1'));
    assert.deepEqual(twice.topology.kernel.cmdline.map((c) => c.param), ['vfio_pci.enable_sriov', 'vfio_pci.nointxmask']);
    assert.match(withCmdline('name: x\n', 'a.b=1'), /^kernel:\n {2}cmdline: a\.b=1$/m);
  });
});

describe('results against the real kernel', () => {
  test('every instance passes: match; skips only where the machine explains them', () => {
    assert.equal(verdict(result('vfio_pci_device_test', { pass: 5 })), 'match');
    assert.equal(verdict(result('vfio_dma_mapping_test', { pass: 20, skip: 10, envSkips: 10 })), 'match');
    // a skip the machine does not explain, a failure, an error, fewer instances, a crash
    assert.equal(verdict(result('vfio_dma_mapping_test', { pass: 20, skip: 10, envSkips: 9 })), 'mismatch');
    assert.equal(verdict(result('vfio_pci_device_test', { pass: 4, fail: 1, rc: 1 })), 'mismatch');
    assert.equal(verdict(result('vfio_pci_device_test', { pass: 5, error: 1 })), 'mismatch');
    assert.equal(verdict(result('vfio_pci_device_test', { pass: 4 })), 'mismatch');
    assert.equal(verdict(result('vfio_pci_device_test', { rc: 134, pass: null, fail: null, skip: null })), 'mismatch');
    // a whole-binary skip although the host has its device (the kernel would run it)
    assert.equal(verdict(result('vfio_pci_driver_test', { bdf: '0000:00:09.0', rc: 4, pass: null, fail: null, skip: null })), 'mismatch');
    assert.equal(verdict(result('vfio_pci_driver_test', { bdf: null, rc: null, pass: null })), 'not run');
  });

  test('the gate names every mismatch and nothing else; the README table', () => {
    const rs = [
      result('vfio_iommufd_setup_test', { pass: 6 }),
      result('vfio_pci_device_test', { pass: 4, fail: 1, rc: 1, note: 'first failure: x' }),
      result('vfio_pci_driver_test', { bdf: null, rc: null, pass: null, note: 'no function with a selftest driver in the host' }),
    ];
    const g = gate(rs);
    assert.equal(g.length, 1);
    assert.match(g[0]!, /^vfio_pci_device_test \(0000:01:00\.0\): expected 5 passing instances, got rc=1 pass=4 fail=1 skip=0 \(first failure: x\)$/);
    const md = markdown(rs).split('\n');
    assert.equal(md[0], '| test binary | device | real kernel | vfiosim | CI | note |');
    assert.equal(md[2], '| vfio_iommufd_setup_test | 0000:01:00.0 | 6 pass | **6 pass** | matches, gated |  |');
    assert.equal(md[3], '| vfio_pci_device_test | 0000:01:00.0 | 5 pass | 4 pass, 1 fail | **MISMATCH** | first failure: x |');
    assert.match(md[4]!, /^\| vfio_pci_driver_test \| - \| 35 pass expected; oracle: skipped \(no IOAT\/DSA device\) \| not run \| not run \|/);
  });
});
