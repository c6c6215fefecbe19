// Property test of the VF-token rules: random sequences of PF and VF opens (GET_DEVICE_FD with
// or without " vf_token=", VF cdev binds with or without VFIO_DEVICE_BIND_FLAG_TOKEN), token SETs
// through VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, closes, and VFs disabled and enabled again, against a
// reference model of vfio_pci_core_match_token_uuid: a VF needs the PF's current token; a PF needs
// it while any VF is open (vf_token->users), and otherwise an offered token becomes the token; the
// first token is random (uuid_gen), so no guess matches it. After every step the PF's users count
// is the number of VFs with an open file.
//
// Run: npx tsc -p tsconfig.json && node --test dist/test/sriov_property.test.js
// Replay: VFIOSIM_SEED=<seed> node --test dist/test/sriov_property.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Process } from '../src/api/index.js';
import { VfioPciCoreDevice } from '../src/drivers/vfio_pci_core.js';
import { U, bindArg, boot, getDeviceFd, proc, setContainer, yamlHost } from './helpers.js';

const envSeed = process.env.VFIOSIM_SEED;
const SEED = envSeed !== undefined && envSeed !== '' ? Number(envSeed) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
const SCALE = Number(process.env.VFIOSIM_RUNS_SCALE ?? '1') || 1;

const PF = '0000:01:00.0';
const VFS = ['0000:01:10.0', '0000:01:10.2'];
const TOPOLOGY = yamlHost(
  `  - bdf: "${PF}"
    id: "8086:10c9"
    class: 0x020000
    pcie: true
    iommu_group: 2
    driver: vfio-pci
    reset: [flr]
    caps: [ { id: pcie, flr: true } ]
    ext_caps: [ { id: sriov, total_vfs: 2, vf_device: 0x10ca, offset: 0x80, stride: 2, vf_bars: [ { size: 0x4000 } ], vf: { caps: [ { id: pcie, flr: true } ] } } ]
`,
  'kernel: { cmdline: "vfio_pci.enable_sriov=1" }\n',
);
const UUIDS = ['52ac9bff-3a88-4fbd-901a-0d767c3b6c97', '88594674-90a0-47a9-aea8-9d9b352ac08a', '00000000-0000-0000-0000-000000000000'];
const bytes = (u: string) => Uint8Array.from(u.replace(/-/g, '').match(/../g)!.map((x) => parseInt(x, 16)));

/** tok: 0 = no token, k = UUIDS[k - 1] */
type Op =
  | { t: 'openPf'; tok: number }
  | { t: 'openVf'; tok: number }
  | { t: 'bindVf'; tok: number }
  | { t: 'setToken'; tok: number; f: number }
  | { t: 'close'; f: number }
  | { t: 'reenable' };

const tok = fc.nat({ max: UUIDS.length });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('openPf' as const), tok }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('openVf' as const), tok }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('bindVf' as const), tok }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('setToken' as const), tok: fc.integer({ min: 1, max: UUIDS.length }), f: fc.nat({ max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('close' as const), f: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reenable' as const }) },
);

interface Open {
  fd: number;
  dev: 'pf' | 0 | 1;
}

const coverage = new Map<string, number>();
const cover = (k: string) => coverage.set(k, (coverage.get(k) ?? 0) + 1);

function run(ops: Op[]): void {
  const h = boot(TOPOLOGY);
  const p: Process = proc(h);
  const w = p.open(`/sys/bus/pci/devices/${PF}/sriov_numvfs`, 1);
  assert.equal(p.writeBytes(w, '2'), 1);
  const c = p.open('/dev/vfio/vfio');
  const iommufd = p.open('/dev/iommu');
  const groupOf = (bdf: string) => Number(p.realpath(`/sys/bus/pci/devices/${bdf}/iommu_group`)!.split('/').pop());
  const openGroup = (bdf: string) => {
    const g = p.open(`/dev/vfio/${groupOf(bdf)}`);
    assert.equal(setContainer(p, g, c), 0);
    return g;
  };
  const pfg = openGroup(PF);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
  // VF0 is used through its group, VF1 through its cdev (a group held would block the cdev)
  let vfg = openGroup(VFS[0]!);
  let cdevPath = `/dev/vfio/devices/${p.readdir(`/sys/bus/pci/devices/${VFS[1]}/vfio-dev`)!.find((n) => n.startsWith('vfio'))}`;
  // the model
  let token: number | null = null; // null: uuid_gen's, which nobody knows
  let open: Open[] = [];
  const users = () => new Set(open.filter((o) => o.dev !== 'pf').map((o) => o.dev)).size;
  const pfCore = () => h.vfioDevice(PF)!.drv as VfioPciCoreDevice;
  const arg = (bdf: string, t: number) => (t ? `${bdf} vf_token=${UUIDS[t - 1]}` : bdf);
  /** a PF opening: the token is checked while VFs are in use, else an offered one is taken */
  const pfExpect = (t: number): string => {
    if (users()) return t && t === token ? 'ok' : 'EACCES';
    if (t) token = t;
    return 'ok';
  };
  const vfExpect = (t: number): string => (t && t === token ? 'ok' : 'EACCES');
  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op)}`;
    let got: string;
    let want: string;
    switch (op.t) {
      case 'openPf': {
        want = pfExpect(op.tok);
        const fd = getDeviceFd(p, pfg, arg(PF, op.tok));
        got = fd < 0 ? p.errnoName : 'ok';
        if (fd >= 0) open.push({ fd, dev: 'pf' });
        break;
      }
      case 'openVf': {
        want = vfExpect(op.tok);
        const fd = getDeviceFd(p, vfg, arg(VFS[0]!, op.tok));
        got = fd < 0 ? p.errnoName : 'ok';
        if (fd >= 0) open.push({ fd, dev: 0 });
        break;
      }
      case 'bindVf': {
        const dev = p.open(cdevPath);
        let ptr = 0n;
        if (op.tok) {
          const a = p.mem.alloc(16);
          p.mem.write(a, bytes(UUIDS[op.tok - 1]!));
          ptr = BigInt(a);
        }
        // the token is checked first; then the cdev path opens a device only once (vfio_df_open)
        want = vfExpect(op.tok);
        if (want === 'ok' && open.some((o) => o.dev === 1)) want = 'EINVAL';
        const r = p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, iommufd, { flags: op.tok ? U.VFIO_DEVICE_BIND_FLAG_TOKEN : 0, token: ptr }));
        got = r < 0 ? p.errnoName : 'ok';
        if (r >= 0) open.push({ fd: dev, dev: 1 });
        else p.close(dev);
        break;
      }
      case 'setToken': {
        const pfs = open.filter((o) => o.dev === 'pf');
        if (!pfs.length) return;
        const o = pfs[op.f % pfs.length]!;
        const a = p.mem.alloc(24);
        const hdr = new DataView(new ArrayBuffer(8));
        hdr.setUint32(0, 24, true);
        hdr.setUint32(4, U.VFIO_DEVICE_FEATURE_SET | U.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, true);
        p.mem.write(a, new Uint8Array(hdr.buffer));
        p.mem.write(a + 8, bytes(UUIDS[op.tok - 1]!));
        const r = p.ioctl(o.fd, U.VFIO_DEVICE_FEATURE, a);
        got = r < 0 ? p.errnoName : 'ok';
        want = 'ok';
        token = op.tok;
        break;
      }
      case 'close': {
        if (!open.length) return;
        const o = open.splice(op.f % open.length, 1)[0]!;
        got = p.close(o.fd) < 0 ? p.errnoName : 'ok';
        want = 'ok';
        break;
      }
      case 'reenable': {
        // only with no VF file open (disabling would wait for the users)
        if (open.some((o) => o.dev !== 'pf')) return;
        p.close(vfg);
        got = [p.writeBytes(w, '0'), p.writeBytes(w, '2')].join(',');
        want = '1,1';
        vfg = openGroup(VFS[0]!);
        cdevPath = `/dev/vfio/devices/${p.readdir(`/sys/bus/pci/devices/${VFS[1]}/vfio-dev`)!.find((n) => n.startsWith('vfio'))}`;
        break;
      }
    }
    cover(`${op.t} ${want}`);
    assert.equal(got, want, where);
    assert.equal(pfCore().vfToken!.users, users(), `${where}: vf_token->users`);
  });
  for (const o of open) p.close(o.fd);
  open = [];
  assert.equal(pfCore().vfToken!.users, 0);
  assert.deepEqual(h.kernel.warnings, []);
}

test(`VF-token rules over random open/bind/set/close sequences match the reference model (seed ${SEED})`, () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => run(ops)),
    {
      seed: SEED,
      numRuns: Math.round(120 * SCALE),
      endOnFailure: false,
      // outcomes the coverage check needs on every seed: a second cdev bind of a bound VF
      examples: [[[{ t: 'openPf', tok: 1 }, { t: 'bindVf', tok: 1 }, { t: 'bindVf', tok: 1 }, { t: 'openPf', tok: 0 }, { t: 'close', f: 1 }, { t: 'reenable' }]]],
    },
  );
  for (const k of ['openPf ok', 'openPf EACCES', 'openVf ok', 'openVf EACCES', 'bindVf ok', 'bindVf EACCES', 'bindVf EINVAL', 'setToken ok', 'close ok', 'reenable 1,1'])
    assert.ok(coverage.has(k), `not covered: ${k} (seed ${SEED})`);
});
