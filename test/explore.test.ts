// The explorer: DPOR finds each variant's violation and verifies Linux 7.2 on the same scenario;
// one execution per Mazurkiewicz trace (checked against brute-force enumeration of every
// interleaving); replay reproduces; deadlocks and lock-order cycles are detected; the scenario
// format's explorer extensions; the other modes; the C export.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScenarioError } from '../src/scenario/scenario.js';
import { explore, replayScheduleText } from '../src/explore/explore.js';
import { VARIANTS } from '../src/explore/variants.js';
import { counterexampleC, formatCounterexample, parseSchedule, scheduleText } from '../src/explore/counterexample.js';
import { prepareScenario } from '../src/explore/execution.js';
import { ROOT, abba, example, scenario, traces } from './explore_helpers.js';

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
    assert.ok(rr.violations.some((x) => x.kind === cx.violation.kind), `${v.name}: the replay of ${cx.schedule} does not show ${cx.violation.kind}`);
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
  // it compiles against the 7.2 uapi headers where a compiler and the headers are at hand
  const hdr = join(homedir(), '.cache', 'vfio-oracle', 'uapi-7.2');
  const cc = spawnSync('cc', ['--version']);
  if (cc.status === 0 && existsSync(join(hdr, 'linux', 'vfio.h'))) {
    const dir = mkdtempSync(join(tmpdir(), 'vfiosim-cx-'));
    writeFileSync(join(dir, 'repro.c'), c);
    execFileSync('cc', ['-O2', '-Wall', '-Werror', '-pthread', '-I', hdr, '-o', join(dir, 'repro'), join(dir, 'repro.c')]);
  }
});

// ---- the command line -----------------------------------------------------------------------------

test('explore: vfiosim explore exit status, JSON and replay', () => {
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'explore', ...args], { cwd: ROOT, encoding: 'utf8' });
  const ok = run('examples/explore/unbind-vs-ioctl.yaml', '--quiet');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /verdict: +VERIFIED/);
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-explore-'));
  const bad = run('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'bound-unbound', '--json', '--export-c', join(dir, 'cx.c'));
  assert.equal(bad.status, 1, bad.stderr);
  const doc = JSON.parse(bad.stdout);
  assert.equal(doc.verdict, 'violation');
  const sched = doc.counterexamples[0].schedule as string;
  assert.match(readFileSync(join(dir, 'cx.c'), 'utf8'), /int main\(void\)/);
  const rep = run('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'bound-unbound', '--replay', sched);
  assert.equal(rep.status, 1, rep.stderr);
  assert.match(rep.stdout, /^violation \(/);
  const usage = run('examples/explore/unbind-vs-ioctl.yaml', '--mode', 'sideways');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--mode: "sideways" is not one of dpor, exhaustive, bounded, random, pct/);
  const noThreads = run('examples/cdev-flow.yaml');
  assert.equal(noThreads.status, 2);
  assert.match(noThreads.stderr, /has no threads/);
  const unknown = run('examples/explore/unbind-vs-ioctl.yaml', '--variant', 'nope');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /no variant named "nope"/);
});
