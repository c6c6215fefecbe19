// The explorer: DPOR finds each variant's violation and verifies Linux 7.2 on the same scenario;
// one execution per Mazurkiewicz trace (checked against brute-force enumeration of every
// interleaving); replay reproduces; deadlocks and lock-order cycles are detected; the scenario
// format's explorer extensions; the other modes; the C export.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScenarioError } from '../src/scenario/scenario.js';
import { explore, replayScheduleText } from '../src/explore/explore.js';
import type { ExploreResult } from '../src/explore/explore.js';
import { VARIANTS } from '../src/explore/variants.js';
import { counterexampleC, formatCounterexample, parseSchedule, scheduleText } from '../src/explore/counterexample.js';
import { prepareScenario } from '../src/explore/execution.js';
import { EXAMPLES, ROOT, abba, cli, example, scenario, traces, uapiHeaders } from './explore_helpers.js';
import { counterexampleProgram, exploreFile, replayFile, ExploreUsageError } from '../src/explore/api.js';
import { matchesPrediction, parseProgramOutput, predictLinux } from '../src/explore/predict.js';
import type { Progress } from '../src/explore/engine.js';
import * as api from '../src/api/index.js';

// ---- variants: found by DPOR, and Linux 7.2 verified on the same scenario ---------------------------

for (const v of VARIANTS) {
  test(`explore: variant ${v.name} fails its scenario, Linux 7.2 passes it (DPOR)`, () => {
    assert.ok(v.scenario, 'every built-in variant names its scenario');
    const sc = example(v.scenario!.replace('examples/explore/', ''));
    assert.ok(sc.variants.includes(v.name), `${v.scenario} lists the variant it catches`);
    const bad = explore(sc, { variant: v.name });
    assert.equal(bad.verdict, 'violation', `${v.name}: no violation found`);
    const cx = bad.counterexamples[0]!;
    assert.ok(cx.steps.length > 0 && cx.steps.length <= cx.foundLength);
    // the counterexample replays to the same violation
    const rr = replayScheduleText(sc, cx.schedule, { variant: v.name });
    assert.deepEqual(rr.violations, cx.violations, `${v.name}: the replay of ${cx.schedule} differs`);
    assert.ok(rr.violations.some((x) => x.kind === cx.violation.kind && x.message === cx.violation.message));
    assert.deepEqual(rr.steps, cx.steps);
    const good = explore(sc, {});
    assert.equal(good.verdict, 'verified', `Linux 7.2: ${good.counterexamples.map((c) => c.violation.message).join('; ')}`);
    assert.equal(good.stats.complete, true);
    assert.equal(good.stats.sleepBlocked, 0);
  });
}

test('explore: what each variant breaks', () => {
  const kinds: Record<string, string[]> = {};
  for (const v of VARIANTS) {
    const sc = example(v.scenario!.replace('examples/explore/', ''));
    const r = explore(sc, { variant: v.name, all: true });
    kinds[v.name] = [...new Set(r.counterexamples.flatMap((c) => [c.violation.kind, ...c.violations.map((x) => x.kind)]))].sort();
  }
  // seed 003: the second file opens the device again, the first close tears it down under the other
  assert.ok(kinds['per-file-open']!.includes('open-once'));
  assert.ok(kinds['per-file-open']!.includes('access-while-closed'));
  // seed 004: the container is detached from under an open device
  assert.ok(kinds['group-fd-unpinned']!.includes('kernel-warn'));
  // seed 002: an ioctl reaches the device before the bind granted access
  assert.ok(kinds['atomic-opened']!.includes('access-granted'));
  // seed 000: an ioctl past the access check uses the device after close_device
  assert.ok(kinds['bound-unbound']!.includes('access-while-closed'));
});

// ---- one execution per Mazurkiewicz trace ---------------------------------------------------------------

const SMALL: Array<[string, () => ReturnType<typeof scenario>, number]> = [
  ['unbind of a bound cdev file (7.2 refuses it) vs GET_INFO', () => example('unbind-vs-ioctl.yaml'), 1],
  [
    'close of a cdev fd vs an ioctl on it (fget against close)',
    () =>
      scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/devices/vfio0 as dev } ]
threads:
  a: [ { p: close dev } ]
  b: [ { p: { ioctl: VFIO_DEVICE_GET_INFO, fd: dev, arg: {} } } ]`),
    1,
  ],
  [
    'two processes open the same group (one opener)',
    () =>
      scenario(`processes: { p: {}, q: {} }
threads:
  a: [ { p: open /dev/vfio/13 } ]
  b: [ { q: open /dev/vfio/13 } ]`),
    1,
  ],
  [
    'driver unbind vs an ioctl on an unbound cdev file (the unregister waits)',
    () =>
      scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/devices/vfio0 as dev } ]
threads:
  a: [ { admin: unbind 0000:01:00.0 } ]
  b: [ { p: { ioctl: VFIO_DEVICE_GET_INFO, fd: dev, arg: {} } } ]`),
    1,
  ],
  ['driver unbind vs the close of the last file (no timeout)', () => example('unbind-while-open.yaml'), 0],
  [
    'two threads of one process open, use and close files (fd numbers race)',
    () =>
      scenario(`processes: { p: {} }
threads:
  a: [ { p: open /dev/iommu as x }, { p: close x } ]
  b: [ { p: open /dev/iommu as y }, { p: { ioctl: IOMMU_IOAS_ALLOC, fd: y, arg: {} } }, { p: close y } ]`),
    1,
  ],
];

for (const [name, make, timeouts] of SMALL) {
  test(`explore: DPOR explores each trace exactly once, against brute force: ${name}`, () => {
    const sc = make();
    const d = traces(sc, { strategy: 'dpor', timeouts });
    const x = traces(sc, { strategy: 'exhaustive', timeouts });
    assert.ok(x.executions >= x.keys.size);
    // the same traces, each explored once: redundancy ratio 1.00
    assert.deepEqual([...d.keys].sort(), [...x.keys].sort());
    assert.equal(d.executions, x.keys.size, `redundancy ${d.executions}/${x.keys.size}`);
    assert.equal(d.sleepBlocked, 0);
  });
}

// ---- replay -------------------------------------------------------------------------------------------

test('explore: a replay is deterministic and follows the schedule; bad schedules are refused', () => {
  const sc = example('unbind-vs-ioctl.yaml');
  const r1 = replayScheduleText(sc, 'user*3,unbinder*6,user', { variant: 'bound-unbound' });
  const r2 = replayScheduleText(sc, 'user*3,unbinder*6,user', { variant: 'bound-unbound' });
  assert.deepEqual(r1, r2);
  assert.equal(r1.steps.length, 10);
  assert.deepEqual(r1.steps.map((s) => s.thread), [...Array(3).fill('user'), ...Array(6).fill('unbinder'), 'user']);
  assert.ok(r1.violations.some((v) => v.kind === 'access-while-closed'));
  // on Linux 7.2 the same schedule is harmless (the unbind request is EINVAL)
  assert.equal(replayScheduleText(sc, 'user*3,unbinder*3', {}).violations.length, 0);
  assert.throws(() => replayScheduleText(sc, 'nobody'), /no thread "nobody"/);
  assert.throws(() => replayScheduleText(sc, 'user*100'), /user cannot run \(it has finished\)/);
  const names = ['a', 'b'];
  assert.deepEqual(parseSchedule('a*2,b,a', names), [0, 0, 1, 0]);
  assert.equal(scheduleText([0, 0, 1, 0], names), 'a*2,b,a');
});

// ---- deadlocks and lock-order cycles --------------------------------------------------------------------

test('explore: a lock inversion between two threads is found as a deadlock and as a lock-order cycle', () => {
  const sc = scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/13 as group } ]
threads:
  a: [ { p: { ioctl: VFIO_GROUP_GET_STATUS, fd: group, arg: {} } } ]
  b: [ { p: { ioctl: VFIO_GROUP_UNSET_CONTAINER, fd: group } } ]`);
  const r = explore(sc, { variant: abba, all: true });
  assert.equal(r.verdict, 'violation');
  const dl = r.counterexamples.find((c) => c.violation.kind === 'deadlock' || c.violations.some((v) => v.kind === 'deadlock'));
  assert.ok(dl, 'no deadlock found');
  assert.match(dl!.violations.find((v) => v.kind === 'deadlock')!.message, /blocked in mutex_lock\(vfio_group 13->(device|group)_lock\) held by/);
  assert.equal(r.lockCycles.length, 1);
  assert.deepEqual([...r.lockCycles[0]!.locks].sort(), ['vfio_group 13->device_lock', 'vfio_group 13->group_lock']);
  // the deadlock replays
  const rr = replayScheduleText(sc, dl!.schedule, { variant: abba });
  assert.ok(rr.ended && rr.violations.some((v) => v.kind === 'deadlock'));
  // Linux 7.2: no deadlock, no cycle
  assert.equal(explore(sc, {}).verdict, 'verified');
});

test('explore: a lock-order cycle is reported even when no interleaving deadlocks', () => {
  // one thread takes the locks in both orders, one call after the other: it cannot deadlock,
  // but the inversion is there for any two threads that would do it concurrently
  const sc = scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/13 as group } ]
threads:
  a:
    - { p: { ioctl: VFIO_GROUP_GET_STATUS, fd: group, arg: {} } }
    - { p: { ioctl: VFIO_GROUP_UNSET_CONTAINER, fd: group } }`);
  const r = explore(sc, { variant: abba });
  assert.equal(r.counterexamples.length, 0);
  assert.equal(r.lockCycles.length, 1);
  assert.equal(r.verdict, 'violation');
  // unless the scenario disables it
  const off = scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/13 as group } ]
threads:
  a:
    - { p: { ioctl: VFIO_GROUP_GET_STATUS, fd: group, arg: {} } }
    - { p: { ioctl: VFIO_GROUP_UNSET_CONTAINER, fd: group } }
invariants: { disable: [lock-order] }`);
  assert.equal(explore(off, { variant: abba }).verdict, 'verified');
});

test('explore: an unregister waiting for a file left open is not a deadlock; waiting after the last close is', () => {
  const sc = scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/devices/vfio0 as dev } ]
threads:
  a: [ { admin: unbind 0000:01:00.0 } ]`);
  const r = explore(sc, {});
  assert.equal(r.verdict, 'verified');
  assert.ok(r.notes.some((n) => /waits for 1 open file/.test(n)), r.notes.join('\n'));
  // a release that forgets the registration put: the unbind never finishes although no file is left
  const leak = {
    name: 'leaky-release',
    title: 'a device file release without the registration put',
    description: 'tests only',
    overrides: {
      vfio_device_fops_release: function* (): Generator<never, void, unknown> {},
    },
  };
  const sc2 = scenario(`processes: { p: {} }
steps: [ { p: open /dev/vfio/devices/vfio0 as dev } ]
threads:
  a: [ { admin: unbind 0000:01:00.0 } ]
  b: [ { p: close dev } ]`);
  const bad = explore(sc2, { variant: leak, all: true });
  assert.ok(bad.counterexamples.some((c) => c.violations.some((v) => v.kind === 'unregister-completes')));
});

// ---- the scenario format's explorer extensions -------------------------------------------------------

test('explore: scenario threads, invariants and variants are validated with clear messages', () => {
  const bad = (yaml: string): string[] => {
    try {
      scenario(yaml);
    } catch (e) {
      assert.ok(e instanceof ScenarioError);
      return e.problems;
    }
    return [];
  };
  assert.deepEqual(
    bad(`processes: { p: {} }
threads:
  a: [ { p: open /dev/iommu as fd } ]
  b: [ { p: close fd } ]`),
    ['threads.b[0]: uses "fd", defined by thread a; a thread may use names from steps: and from its own earlier steps'],
  );
  assert.deepEqual(
    bad(`processes: { p: {} }
threads:
  a: [ { p: "fork as child" } ]`),
    ['threads.a[0]: "fork" cannot be a thread step (threads may use open, close, ioctl, read, write, pread, pwrite, mmap, dup, dup2, exit, exec; do it in steps:)'],
  );
  assert.deepEqual(
    bad(`processes: { p: {} }
threads: { a: [ { p: open /dev/iommu } ] }
invariants: { disable: [nope], check: [ { expr: "1 +" } ] }`).map((s) => s.replace(/: not a valid expression: .*/, ': not a valid expression')),
    [
      'invariants.disable: "nope" is not a built-in invariant (open-once, close-once, access-granted, access-while-closed, use-after-put, kernel-warn, one-opener, group-cdev-exclusion, unregister-completes, deadlock, lock-order, task-error, expect)',
      'invariants.check[0].expr: not a valid expression',
    ],
  );
  // `vfiosim run` files stay valid; steps may be omitted when there are threads
  const sc = scenario(`processes: { p: {} }
threads: { a: [ { p: open /dev/iommu } ] }`);
  assert.equal(sc.steps.length, 0);
  assert.equal(sc.threads[0]!.steps.length, 1);
});

test('explore: user invariants (expressions over the model) are checked at every step and at the end', () => {
  const sc = scenario(`processes: { p: {}, q: {} }
threads:
  a: [ { p: open /dev/vfio/13 } ]
  b: [ { q: open /dev/vfio/13 } ]
invariants:
  check:
    - { name: no group is ever open, expr: "groups.every(g => !g.open)" }
    - { name: the end sees threads, at: end, expr: "threads.every(t => t.finished) && step > 0" }`);
  const r = explore(sc, { all: true });
  assert.deepEqual(r.counterexamples.map((c) => c.violation.kind), ['no group is ever open']);
  // a module-style invariant passed to the API
  const r2 = explore(
    scenario(`processes: { p: {} }
threads: { a: [ { p: open /dev/vfio/devices/vfio0 } ] }`),
    { invariants: [{ name: 'registration refcount at most 1', check: (ctx) => (ctx.vfio('e1000e')!.refcount.value <= 1 ? true : `refcount ${ctx.vfio('e1000e')!.refcount.value}`) }] },
  );
  assert.equal(r2.counterexamples[0]?.violation.message, 'refcount 2');
});

test('explore: expectations in threads must hold in every interleaving', () => {
  const sc = scenario(`processes: { p: {}, q: {} }
threads:
  a: [ { p: open /dev/vfio/13, expect: ok } ]
  b: [ { q: open /dev/vfio/13, expect: ok } ]`);
  const r = explore(sc, {});
  assert.equal(r.counterexamples[0]?.violation.kind, 'expect');
  assert.match(r.counterexamples[0]!.violation.message, /expected success, got -1 EBUSY/);
});

// ---- the other modes ------------------------------------------------------------------------------

test('explore: bounded, random and PCT modes find the variant bugs', () => {
  const sc = example('unbind-vs-ioctl.yaml');
  for (const mode of ['bounded', 'random', 'pct'] as const) {
    const r = explore(sc, { variant: 'bound-unbound', mode, preemptions: 2, runs: 200, seed: 7 });
    assert.equal(r.verdict, 'violation', mode);
  }
  const ok = explore(sc, { mode: 'bounded', preemptions: 1 });
  assert.equal(ok.verdict, 'no-violation-found');
  assert.match(ok.incomplete!, /at most 1 preemption/);
  const rnd = explore(sc, { mode: 'random', runs: 20, countTraces: true });
  assert.equal(rnd.stats.executions, 20);
  assert.ok(rnd.stats.distinctTraces! >= 1 && rnd.stats.distinctTraces! <= 4);
});

test('explore: the counterexample prints readably and exports as JSON and C', () => {
  const sc = example('two-device-files.yaml');
  const r = explore(sc, { variant: 'per-file-open' });
  const cx = r.counterexamples[0]!;
  const text = formatCounterexample(cx);
  assert.match(text, /^violation \(open-once\): open_device\(0000:01:00\.0\) while 0000:01:00\.0 is open/);
  assert.match(text, /replay: +vfiosim explore .*--variant per-file-open --replay '/);
  assert.match(text, /footprint: w dev_set\(bus 0000:01\)->lock/);
  const json = JSON.parse(JSON.stringify(r));
  assert.equal(json.counterexamples[0].violation.kind, 'open-once');
  const c = counterexampleC(prepareScenario(sc), cx);
  assert.match(c, /pthread_create/);
  assert.match(c, /ioctl\(v_group, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00\.0"\)/);
  // shortened to a's GET_DEVICE_FD and b's: the second open of the device while the first file is open
  assert.equal(cx.schedule, 'a*15,b*10');
  assert.match(text, /schedule of 25 transition\(s\) \(shortened from 32: the violation's causal past, without the calls it does not need\)/);
  assert.match(c, /report\("c2", "b", "ioctl\(group, VFIO_GROUP_GET_DEVICE_FD\)", ret\);/);
});

// ---- the C export on Linux 7.2 ------------------------------------------------------------------------

test('explore: the C export predicts what Linux 7.2 prints, for every interleaving the program allows', async () => {
  // two-device-files: the program issues b's GET_DEVICE_FD right after a's close(d1); on 7.2 it
  // gets fd 5 if the close entered the kernel first (issue order), 6 if not
  // (the schedule a*21,b*10 of per-file-open: a's three calls, b's GET_DEVICE_FD started after a's
  // close(d1) started, while it was still running)
  const sc = example('two-device-files.yaml');
  const cx = explore(sc, { variant: 'per-file-open' }).counterexamples[0]!;
  const rr = replayScheduleText(sc, 'a*21,b*10', { variant: 'per-file-open' });
  assert.deepEqual(rr.violations.map((v) => v.kind), ['open-once']);
  const calls = [
    { thread: 'a', step: 0, start: 0, end: 14 },
    { thread: 'a', step: 1, start: 15, end: 19 },
    { thread: 'a', step: 2, start: 20, end: null },
    { thread: 'b', step: 0, start: 21, end: null },
  ];
  const p = predictLinux(prepareScenario(sc), { ...cx, calls }, { timeouts: 1, depth: 20000 });
  assert.equal(p.complete, true);
  assert.deepEqual(
    p.outcomes.map((o) => [o.issueOrder, o.lines.map((l) => `${l.id} ${l.result}`).join(', ')]),
    [
      [true, 's1 = 3, s2 = 4, s3 = 0, s4 = 0, c1 = 5, c2 = 0, c3 = 0, c4 = 5'],
      [false, 's1 = 3, s2 = 4, s3 = 0, s4 = 0, c1 = 5, c2 = 0, c3 = 0, c4 = 6'],
    ],
  );
  // the program's output is compared by call id and result
  const out = parseProgramOutput('c1   a  ioctl(group, VFIO_GROUP_GET_DEVICE_FD) = 5\nnoise\ns1   qemu open("/dev/vfio/vfio") = -1 ENOENT\n');
  assert.deepEqual([...out], [['c1', '= 5'], ['s1', '= -1 ENOENT']]);
  assert.equal(matchesPrediction(p, out), null);
  const prog = await counterexampleProgram(sc, { ...cx, calls });
  assert.match(prog.source, /prints one of these 2 outcomes:\n \* {3}outcome 1 \(possible with the calls entering the kernel in the order they are issued\):/);
  assert.match(prog.source, / \* {5}c4 {3}b {10}ioctl\(group, VFIO_GROUP_GET_DEVICE_FD, 0000:01:00\.0\) = 6/);
});

test('explore: each variant\'s C counterexample compiles against the 7.2 uapi headers (-Werror)', async (t) => {
  const hdr = uapiHeaders();
  if (spawnSync('cc', ['--version']).status !== 0 || !hdr) {
    t.skip('no C compiler or no Linux 7.2 uapi headers');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-cx-'));
  for (const v of VARIANTS) {
    const sc = example(v.scenario!.replace('examples/explore/', ''));
    const cx = explore(sc, { variant: v.name }).counterexamples[0]!;
    const { source } = await counterexampleProgram(sc, cx);
    writeFileSync(join(dir, `${v.name}.c`), source);
    const built: SpawnSyncReturns<string> = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-I', hdr, '-o', join(dir, v.name), join(dir, `${v.name}.c`)], { encoding: 'utf8' });
    assert.equal(built.status, 0, `${v.name}: ${built.stderr}`);
  }
});

test('explore: on the real 7.2 kernel each counterexample program prints an outcome the explorer predicts (oracle fixture)', async () => {
  // test/fixtures/oracle-explore-counterexamples.out: tools/oracle/explore-counterexamples.sh ran
  // the C export of each variant's counterexample on the oracle (Linux 7.2, QEMU, vfio-pci)
  const fixture = readFileSync(join(ROOT, 'test', 'fixtures', 'oracle-explore-counterexamples.out'), 'utf8');
  const blocks = new Map<string, { schedule: string; text: string }>();
  for (const b of fixture.split(/^== /m).filter(Boolean)) {
    const [head, ...rest] = b.split('\n');
    const [name, schedule] = head!.split(' ');
    blocks.set(name!, { schedule: schedule!, text: rest.join('\n') });
  }
  assert.deepEqual([...blocks.keys()].sort(), VARIANTS.map((v) => v.name).sort());
  for (const v of VARIANTS) {
    const sc = example(v.scenario!.replace('examples/explore/', ''));
    const cx = explore(sc, { variant: v.name }).counterexamples[0]!;
    const b = blocks.get(v.name)!;
    assert.equal(cx.schedule, b.schedule, `${v.name}: the counterexample changed; rerun tools/oracle/explore-counterexamples.sh`);
    const p = predictLinux(prepareScenario(sc), cx, { timeouts: 1, depth: 20000 });
    const out = parseProgramOutput(b.text);
    assert.equal(out.size, cx.calls.length + sc.steps.length, `${v.name}: one line per setup step and call`);
    const m = matchesPrediction(p, out);
    assert.ok(m, `${v.name}: the oracle printed\n${b.text}\nnot one of the predicted outcomes`);
  }
  // what the real kernel said, for the record: 7.2 refuses the unbind (seed 000) and an ioctl
  // before the bind (seed 002)
  assert.match(blocks.get('bound-unbound')!.text, /^c2 +unbinder +ioctl\(dev, VFIO_DEVICE_BIND_IOMMUFD\) += -1 EINVAL$/m);
  assert.match(blocks.get('atomic-opened')!.text, /^c1 +user +ioctl\(dev, VFIO_DEVICE_GET_INFO\) += -1 EINVAL$/m);
});

// ---- the driver state of an open device (VfioDevice.openState) -------------------------------------

test('explore: device accesses read the open device\'s driver state, first open and last close write it (as the substrate test says)', () => {
  const sc = scenario(`processes: { p: {} }
steps:
  - p: open /dev/vfio/devices/vfio0 as dev
  - p: open /dev/iommu as iommufd
threads:
  a:
    - { p: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: dev, arg: { iommufd: $iommufd } }, expect: 0 }
    - { p: { ioctl: VFIO_DEVICE_GET_INFO, fd: dev, arg: {} }, expect: 0 }
    - { p: { pread: dev, count: 4, offset: 0x70000000000 }, expect: 4 }
    - { p: close dev, expect: 0 }`);
  const rr = replayScheduleText(sc, `a*${countTransitions(sc)}`, {});
  const state = 'vfio_device(0000:01:00.0) driver state';
  const ops = rr.steps.filter((s) => s.op.includes(state)).map((s) => `${s.op} ${s.footprint.map((f) => `${f.access} ${f.object}`).join(', ')} [${s.call.split('(')[0]}]`);
  assert.deepEqual(ops, [
    `WRITE_ONCE(${state}) w ${state} [ioctl]`,
    `READ_ONCE(${state}) r ${state} [ioctl]`,
    `READ_ONCE(${state}) r ${state} [pread]`,
    `WRITE_ONCE(${state}) w ${state} [close]`,
  ]);
  // the write comes with open_device / close_device, the reads with the device accesses
  const after = (op: string) => rr.steps.find((s) => s.op === op)!.effects.join('; ');
  assert.equal(rr.violations.length, 0, rr.violations.map((v) => v.message).join('; '));
  assert.match(after(`READ_ONCE(${state})`), /device access \(ioctl\) to 0000:01:00\.0/);
  assert.match(rr.steps.find((s) => s.op === `WRITE_ONCE(${state})` && s.call.startsWith('close'))!.effects.join(';'), /close_device\(0000:01:00\.0\)/);
});

/** The transitions of the one execution of a single-thread scenario. */
function countTransitions(sc: ReturnType<typeof scenario>): number {
  const r: ExploreResult = explore(sc, { mode: 'random', runs: 1 });
  return r.stats.transitions;
}

// ---- progress ------------------------------------------------------------------------------------------

test('explore: progress reports executions, rate and an estimate that reaches the end', () => {
  const seen: Progress[] = [];
  const r = explore(example('unbind-while-open.yaml'), { progress: (p) => seen.push(p), progressEveryMs: 0 });
  assert.equal(r.verdict, 'verified');
  // with no minimum interval, one report per execution
  assert.deepEqual(seen.map((p) => p.executions), Array.from({ length: r.stats.executions }, (_x, i) => i + 1));
  for (const p of seen) assert.ok(p.rate > 0 && p.elapsedMs >= 0 && p.violations === 0);
  // the estimate: unknown at first, then the explored share of the exploration tree as known so
  // far (it may go back when a race adds branches to explore)
  const fr = seen.map((p) => p.fraction);
  assert.equal(fr[0], null);
  assert.deepEqual(fr.slice(1), [0.125, 0.25, 0.1875, 0.25, 0.375, 0.5, 0.75]);
});

// ---- the API -------------------------------------------------------------------------------------------

test('explore: the top-level API explores, replays and exports a scenario file, with user modules', async () => {
  const file = join(EXAMPLES, 'unbind-vs-ioctl.yaml');
  assert.equal(api.explorer.exploreFile, exploreFile);
  const r = await exploreFile(file, { variant: 'bound-unbound' });
  assert.equal(r.verdict, 'violation');
  assert.equal(r.counterexamples[0]!.schedule, 'user*3,unbinder*6,user');
  assert.equal(r.counterexamples[0]!.replay, `vfiosim explore ${file} --variant bound-unbound --replay 'user*3,unbinder*6,user'`);
  const rr = await replayFile(file, r.counterexamples[0]!.schedule, { variant: 'bound-unbound' });
  assert.deepEqual(rr.violations.map((v) => v.kind), ['access-granted', 'access-while-closed']);
  assert.equal((await exploreFile(file)).verdict, 'verified');
  const prog = await counterexampleProgram(file, r.counterexamples[0]!);
  assert.deepEqual(prog.expected.outcomes.map((o) => o.lines.map((l) => `${l.id} ${l.result}`).join(', ')), ['s1 = 3, s2 = 4, s3 = 0, c1 = 0, c2 = -1 EINVAL']);
  // the README's worked example: a user variant module, found the same violation
  const two = join(EXAMPLES, 'two-device-files.yaml');
  const mine = await exploreFile(two, { variantModules: [join(EXAMPLES, 'my-variants.example.mjs')], variant: 'per-file-open-2' });
  assert.equal(mine.variant, 'per-file-open-2');
  assert.equal(mine.counterexamples[0]?.violation.kind, 'open-once');
  // the scenario's invariant module is loaded relative to the scenario
  const uw = await exploreFile(join(EXAMPLES, 'unbind-while-open.yaml'), { invariants: [{ name: 'never', check: () => 'no' }] });
  assert.equal(uw.counterexamples[0]?.violation.kind, 'never');
  // bad input is an ExploreUsageError (exit status 2 on the command line)
  await assert.rejects(exploreFile(file, { variant: 'nope' }), (e) => e instanceof ExploreUsageError && /no variant named "nope"/.test(e.message));
  await assert.rejects(exploreFile(join(ROOT, 'examples', 'cdev-flow.yaml')), (e) => e instanceof ExploreUsageError && /has no threads/.test(e.message));
  await assert.rejects(exploreFile(join(EXAMPLES, 'nothing.yaml')), (e) => e instanceof ExploreUsageError && /cannot read .*: ENOENT/.test(e.message));
  await assert.rejects(exploreFile(file, { invariantModules: [join(EXAMPLES, 'nothing.mjs')] }), /cannot load/);
});

// ---- the command line -----------------------------------------------------------------------------

test('explore: vfiosim explore exit status, JSON, C export and replay', async () => {
  const ok = await cli('examples/explore/unbind-vs-ioctl.yaml', '--quiet');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /verdict: +VERIFIED/);
  assert.match(ok.stdout, /explored: +4 executions, 4 distinct traces/);
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-explore-'));
  const bad = await cli('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'bound-unbound', '--json', '--export-c', join(dir, 'cx.c'), '--export-json', join(dir, 'cx.json'));
  assert.equal(bad.status, 1, bad.stderr);
  const doc = JSON.parse(bad.stdout);
  assert.equal(doc.verdict, 'violation');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'cx.json'), 'utf8')), doc);
  const sched = doc.counterexamples[0].schedule as string;
  assert.equal(sched, 'user*3,unbinder*6,user');
  const c = readFileSync(join(dir, 'cx.c'), 'utf8');
  assert.match(c, /int main\(void\)/);
  assert.match(c, / \* {5}c2 {3}unbinder {3}ioctl\(dev, VFIO_DEVICE_BIND_IOMMUFD, \{iommufd=-1\}\) += -1 EINVAL\n/);
  const rep = await cli('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'bound-unbound', '--replay', sched);
  assert.equal(rep.status, 1, rep.stderr);
  assert.match(rep.stdout, /^violation \(access-granted\)/);
  assert.match(rep.stdout, /\n10 transition\(s\); 2 violation\(s\)\n$/);
  // the same schedule on Linux 7.2 cannot even run: the unbind is refused at its 3rd transition
  const rep72 = await cli('examples/explore/unbind-vs-ioctl.yaml', '--replay', sched);
  assert.equal(rep72.status, 2);
  assert.match(rep72.stderr, /--replay: step 7: thread unbinder cannot run \(it has finished\)/);
  // progress goes to stderr unless --quiet or --json
  const prog = await cli('examples/explore/unbind-while-open.yaml');
  assert.equal(prog.status, 0);
  assert.equal(prog.stderr, '');
  const usage = await cli('examples/explore/unbind-vs-ioctl.yaml', '--mode', 'sideways');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--mode: "sideways" is not one of dpor, exhaustive, bounded, random, pct/);
  const noThreads = await cli('examples/cdev-flow.yaml');
  assert.equal(noThreads.status, 2, noThreads.stderr);
  assert.match(noThreads.stderr, /has no threads/);
  const unknown = await cli('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'nope');
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /no variant named "nope"/);
  const list = await cli('--list-variants');
  assert.equal(list.status, 0);
  assert.deepEqual(list.stdout.split('\n').filter((l) => /^\S/.test(l)), VARIANTS.map((v) => v.name));
});
