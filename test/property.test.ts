// Property tests: random syscall sequences from several simulated processes (open of cdevs,
// groups, /dev/vfio/vfio and /dev/iommu, BIND_IOMMUFD, SET/UNSET_CONTAINER, SET_IOMMU,
// GET_DEVICE_FD, GET_INFO, close, dup, dup2, fork, exec, exit) mixed with administrator actions
// (unbind, hot-unplug, time passing, rebind) against the default host; after every step the host
// is compared with a reference model (test/property_model.ts lists the invariants checked).
//
// Run: npx tsc -p tsconfig.json && node --test dist/test/property.test.js
// Replay a failure: VFIOSIM_SEED=<seed printed on failure> node --test dist/test/property.test.js
//   (same runs, same shrinking, same counterexample). Other knobs: VFIOSIM_RUNS_SCALE=<x>
//   multiplies the number of runs (soak), VFIOSIM_COVERAGE=1 prints what the runs covered,
//   VFIOSIM_BRIDGE_UNPLUG=0 leaves bridge hot-unplugs out of the generator.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Host } from '../src/api/index.js';
import { uapi as U } from '../src/api/index.js';
import type { File, Inode } from '../src/kernel/fs/file.js';
import type { KGen } from '../src/kernel/sched.js';
import { kfnOriginal } from '../src/kernel/override.js';
import type { VfioDevice, VfioDeviceFile } from '../src/vfio/vfio.js';
import { vfioDfGroupClose } from '../src/vfio/group.js';
import { vfioDfUnbindIommufd } from '../src/vfio/device_cdev.js';
import { vfioNoteDeviceAccess } from '../src/vfio/vfio_main.js';
import { BRIDGES, Coverage, DEVICES, ModelMismatch, Op, OpName, RunConfig, runSequence } from './property_model.js';

const envSeed = process.env.VFIOSIM_SEED;
const SEED = envSeed !== undefined && envSeed !== '' ? Number(envSeed) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
if (!Number.isInteger(SEED)) throw new Error(`VFIOSIM_SEED must be an integer, got ${envSeed}`);
const SCALE = Number(process.env.VFIOSIM_RUNS_SCALE ?? '1') || 1;
// Hot-unplug of a bridge above the devices (stop the subtree in reverse order, then remove it).
const BRIDGE_UNPLUG = process.env.VFIOSIM_BRIDGE_UNPLUG === '0' ? 0 : 1;
const VERBOSE = process.env.VFIOSIM_COVERAGE === '1';

// ---- operation arbitraries ---------------------------------------------------------------------

// selectors: 0 (the first live process, the newest fd of a kind) most of the time, so that calls
// build on each other as in a real program; any other value picks modulo what exists
const sel = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat({ max: 255 }) });

const arbs: Record<OpName, fc.Arbitrary<Op>> = {
  openCdev: fc.record({ t: fc.constant('openCdev' as const), p: sel, d: sel }),
  openIommu: fc.record({ t: fc.constant('openIommu' as const), p: sel }),
  bind: fc.record({ t: fc.constant('bind' as const), p: sel, f: sel, i: sel, other: fc.nat({ max: 9 }).map((x) => x === 9) }),
  openGroup: fc.record({ t: fc.constant('openGroup' as const), p: sel, d: sel }),
  openContainer: fc.record({ t: fc.constant('openContainer' as const), p: sel }),
  setContainer: fc.record({
    t: fc.constant('setContainer' as const),
    p: sel,
    f: sel,
    c: sel,
    target: fc.constantFrom('container' as const, 'iommufd' as const, 'other' as const),
  }),
  unsetContainer: fc.record({ t: fc.constant('unsetContainer' as const), p: sel, f: sel }),
  setIommu: fc.record({ t: fc.constant('setIommu' as const), p: sel, c: sel }),
  getDeviceFd: fc.record({ t: fc.constant('getDeviceFd' as const), p: sel, f: sel, d: sel, any: fc.boolean() }),
  getInfo: fc.record({ t: fc.constant('getInfo' as const), p: sel, f: sel }),
  close: fc.record({ t: fc.constant('close' as const), p: sel, f: sel }),
  dup: fc.record({ t: fc.constant('dup' as const), p: sel, f: sel }),
  dup2: fc.record({ t: fc.constant('dup2' as const), p: sel, f: sel, g: sel.map((x) => x + 1) }),
  exec: fc.record({ t: fc.constant('exec' as const), p: sel }),
  fork: fc.record({ t: fc.constant('fork' as const), p: sel }),
  exit: fc.record({ t: fc.constant('exit' as const), p: sel }),
  spawn: fc.constant({ t: 'spawn' as const }),
  unbind: fc.record({ t: fc.constant('unbind' as const), d: sel, busy: fc.boolean() }),
  hotUnplug: fc.record({ t: fc.constant('hotUnplug' as const), d: sel, busy: fc.boolean() }),
  hotUnplugBridge: fc.record({ t: fc.constant('hotUnplugBridge' as const), b: sel }),
  advance: fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(1, 5_000, 10_000, 25_000) }),
  rebind: fc.record({ t: fc.constant('rebind' as const), d: sel }),
  viaContainer: fc.record({ t: fc.constant('viaContainer' as const), p: sel, d: sel }),
  viaGroupIommufd: fc.record({ t: fc.constant('viaGroupIommufd' as const), p: sel, d: sel }),
  viaCdev: fc.record({ t: fc.constant('viaCdev' as const), p: sel, d: sel }),
};

type Weights = Partial<Record<OpName, number>>;

function opsArb(w: Weights, maxLength: number): fc.Arbitrary<Op[]> {
  const entries = (Object.entries(w) as Array<[OpName, number]>).filter(([, x]) => x > 0);
  const op = fc.oneof(...entries.map(([name, weight]) => ({ arbitrary: arbs[name], weight: Math.round(weight * 10) })));
  return fc.array(op, { minLength: 1, maxLength, size: 'max' });
}

// ---- the property runs -------------------------------------------------------------------------

interface Suite {
  name: string;
  cfg: RunConfig;
  weights: Weights;
  maxLength: number;
  numRuns: number;
}

const ALL = DEVICES.map((_, i) => i);
const byName = (...names: string[]) => names.map((n) => DEVICES.findIndex((d) => d.name === n));

const BASE: Weights = {
  openCdev: 8,
  openIommu: 5,
  bind: 8,
  openGroup: 6,
  openContainer: 4,
  setContainer: 6,
  unsetContainer: 1,
  setIommu: 4,
  getDeviceFd: 8,
  getInfo: 4,
  close: 6,
  dup: 2,
  dup2: 1,
  exec: 1,
  fork: 2,
  exit: 2,
  spawn: 1,
  unbind: 2,
  hotUnplug: 0.3,
  hotUnplugBridge: 0.3 * BRIDGE_UNPLUG,
  advance: 1,
  rebind: 2,
  viaContainer: 2,
  viaGroupIommufd: 2,
  viaCdev: 2,
};

const SUITES: Suite[] = [
  {
    name: 'mixed syscalls and admin actions on all five devices',
    cfg: { devices: ALL, initialProcs: 3, maxProcs: 6 },
    weights: BASE,
    maxLength: 60,
    numRuns: 800,
  },
  {
    name: 'shared IOMMU group 13 and the igb device set: cdev vs group path',
    cfg: { devices: byName('grp-edu', 'grp-testdev', 'igb0', 'igb1'), initialProcs: 2, maxProcs: 4 },
    weights: { ...BASE, unbind: 1, hotUnplug: 0, rebind: 1, bind: 10, getDeviceFd: 10 },
    maxLength: 50,
    numRuns: 500,
  },
  {
    name: 'admin churn: unbind / hot-unplug / rebind with open files across fork and exit',
    cfg: { devices: byName('e1000e', 'grp-edu', 'grp-testdev'), initialProcs: 2, maxProcs: 5 },
    weights: { ...BASE, unbind: 6, hotUnplug: 1, rebind: 6, advance: 3, fork: 3, exit: 3, close: 8 },
    maxLength: 50,
    numRuns: 500,
  },
];

for (const s of SUITES) {
  test(`property: ${s.name}`, () => {
    const cov: Coverage = {};
    const numRuns = Math.max(1, Math.round(s.numRuns * SCALE));
    const t0 = performance.now();
    const prop = fc.property(opsArb(s.weights, s.maxLength), (ops) => {
      runSequence(s.cfg, ops, cov);
    });
    try {
      fc.assert(prop, { seed: SEED, numRuns, includeErrorInReport: true });
    } catch (e) {
      console.error(`\nproperty "${s.name}" failed; replay with VFIOSIM_SEED=${SEED}\n`);
      throw e;
    }
    if (VERBOSE) {
      const ms = Math.round(performance.now() - t0);
      const lines = Object.entries(cov)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `  ${k}: ${v}`);
      console.log(`${s.name}: ${numRuns} runs in ${ms} ms (seed ${SEED})\n${lines.join('\n')}`);
    }
  });
}

// ---- the properties can fail: injected kernel bugs are caught ---------------------------------
//
// Each mutant replaces one kernel function (through the per-kernel override table, so nothing
// outside its own host changes) with a broken version; the random runs must find a violation
// (whichever check sees it first: a call's result, an invariant, a kernel warning). Shrinking is
// skipped (endOnFailure): only detection matters here.

type Override = (host: Host) => void;

const MUTANTS: Array<{ name: string; mutate: Override }> = [
  {
    name: 'a cdev BIND that does not block the group (group/cdev exclusion lost)',
    mutate: (h) => h.kernel.overrides.set('vfio_device_block_group', function* (): KGen<number> {
      return 0;
    }),
  },
  {
    name: 'a last close that skips close_device',
    mutate: (h) =>
      h.kernel.overrides.set('vfio_df_close', function* (df: VfioDeviceFile): KGen<void> {
        df.device.openCount--;
      }),
  },
  {
    name: 'a device file release that keeps its registration reference',
    mutate: (h) =>
      h.kernel.overrides.set('vfio_device_fops_release', function* (_i: Inode, file: File): KGen<void> {
        const df = file.privateData as VfioDeviceFile;
        if (df.group) yield* vfioDfGroupClose(df);
        else yield* vfioDfUnbindIommufd(df);
      }),
  },
  {
    name: 'an ioctl that touches the device before checking access_granted',
    mutate: (h) => {
      const orig = kfnOriginal<(f: File, cmd: number, arg: bigint) => KGen<number>>('vfio_device_fops_unl_ioctl');
      h.kernel.overrides.set('vfio_device_fops_unl_ioctl', function* (file: File, cmd: number, arg: bigint): KGen<number> {
        const df = file.privateData as VfioDeviceFile;
        // the device is reached first; the caller still gets the right answer (EINVAL if blocked)
        if (cmd === U.VFIO_DEVICE_GET_INFO) vfioNoteDeviceAccess(df, 'ioctl');
        return yield* orig(file, cmd, arg);
      });
    },
  },
  {
    name: 'an unregister that does not wait for the device files',
    mutate: (h) => {
      const orig = kfnOriginal<(d: VfioDevice) => KGen<void>>('vfio_unregister_group_dev');
      h.kernel.overrides.set('vfio_unregister_group_dev', function* (d: VfioDevice): KGen<void> {
        // pretend every file is gone: complete the registration before waiting
        d.refcount.set(1);
        yield* orig(d);
      });
    },
  },
];

for (const m of MUTANTS) {
  test(`property sanity: detects ${m.name}`, () => {
    const prop = fc.property(opsArb(SUITES[0]!.weights, 40), (ops) => {
      runSequence({ ...SUITES[0]!.cfg, mutate: m.mutate }, ops);
    });
    const r = fc.check(prop, { seed: SEED, numRuns: 300, endOnFailure: true });
    assert.ok(r.failed, `the injected bug was not detected in ${r.numRuns} runs (seed ${SEED})`);
    // found by a check of the model (an invariant or a call's result), not by a crash
    const e = r.errorInstance;
    assert.ok(e instanceof ModelMismatch, `the run failed in an unexpected way: ${e instanceof Error ? e.stack : String(e)}`);
  });
}

// ---- a model bug the properties found (fixed) ------------------------------------------------
//
// Linux's pci_stop_and_remove_bus_device (drivers/pci/remove.c) first stops the whole subtree,
// children in REVERSE bus order (pci_stop_bus_device: list_for_each_entry_safe_reverse), and
// only then removes it (pci_remove_bus_device). With igb0 open and igb1 idle, unplugging rp4 must
// unbind igb1 at once and then wait for igb0; with igb1 open, Linux waits for igb1 first and keeps
// igb0 bound and usable. The host once walked the children in bus order, stopping and removing each.

test(
  'hot-unplug of a bridge stops the functions below it in Linux order',
  () => {
    const cfg: RunConfig = { devices: ALL, initialProcs: 1, maxProcs: 1 };
    const igb0 = DEVICES.findIndex((d) => d.name === 'igb0');
    const igb1 = DEVICES.findIndex((d) => d.name === 'igb1');
    const rp4 = BRIDGES.findIndex((b) => b.name === 'rp4');
    const cases: Array<[string, Op[]]> = [
      // igb0 open through its cdev: unplugging rp4 must stop idle igb1 at once, then wait for igb0
      ['igb0 open', [{ t: 'viaCdev', p: 0, d: igb0 }, { t: 'hotUnplugBridge', b: rp4 }, { t: 'close', p: 0, f: 0 }]],
      // igb1 open: Linux waits for igb1 first, igb0 stays bound and can still be opened
      ['igb1 open', [{ t: 'viaCdev', p: 0, d: igb1 }, { t: 'hotUnplugBridge', b: rp4 }, { t: 'viaCdev', p: 0, d: igb0 }]],
    ];
    const failures: string[] = [];
    for (const [name, ops] of cases) {
      try {
        runSequence(cfg, ops);
      } catch (e) {
        failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    assert.deepEqual(failures, []);
  },
);
