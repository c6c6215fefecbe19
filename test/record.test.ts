// vfiosim record / verify (issue 7): the recorded hosts of the real-kernel oracle's four machines
// boot and verify with no difference; the verifier finds and names differences; the recording
// format is checked field by field; the C recorder and the TypeScript interpreter read the probe
// language alike; the oracle's lifecycle.c runs on a recorded host as on the real kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host, HostConfigError, Process, parseTopology, vfio } from '../src/api/index.js';
import { PACKAGE_ROOT } from '../src/bridge/native.js';
import { errnoName } from '../src/kernel/errno.js';
import { PROBE_CONSTANTS, normalizeProbes, parseProbes, encodeOut } from '../src/record/probes.js';
import { VerifyError, formatVerifyReport, verifyRecording } from '../src/record/verify.js';
import { buildRecorder, PROBES_FILE } from '../src/record/cli.js';
import { lifecycleReplay } from './lifecycle_replay.js';

const HOSTS = join(PACKAGE_ROOT, 'hosts');
const recording = (name: string) => parseTopology(readFileSync(join(HOSTS, `oracle-${name}.yaml`), 'utf8'), `hosts/oracle-${name}.yaml`);
const LIFECYCLE_OUT = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'lifecycle.out'), 'utf8');
const hasCc = spawnSync('cc', ['--version']).status === 0;

function problems(yaml: string): string[] {
  try {
    parseTopology(yaml, 'rec.yaml');
  } catch (e) {
    assert.ok(e instanceof HostConfigError);
    return e.problems;
  }
  assert.fail('accepted');
}

// ---- the shipped recordings ----------------------------------------------------------------

const SHIPPED: Array<[string, { functions: number; runs: number; steps: number; vfio: string[] }]> = [
  ['default', { functions: 4, runs: 23, steps: 449, vfio: ['0000:01:00.0', '0000:02:00.0', '0000:03:00.0', '0000:00:05.0'] }],
  ['devset', { functions: 3, runs: 19, steps: 391, vfio: ['0000:01:00.0', '0000:01:00.1', '0000:02:00.0'] }],
  ['devset-igb', { functions: 3, runs: 19, steps: 391, vfio: ['0000:01:00.0', '0000:01:00.1', '0000:02:00.0'] }],
  ['group', { functions: 3, runs: 19, steps: 391, vfio: ['0000:01:01.0', '0000:01:02.0', '0000:02:00.0'] }],
];

for (const [name, want] of SHIPPED) {
  test(`record: hosts/oracle-${name}.yaml (the real kernel's answers) verifies with no difference`, () => {
    const t = recording(name);
    assert.equal(t.recorded?.uname?.release, '7.2.13');
    assert.deepEqual(t.recorded?.selected, want.vfio);
    const r = verifyRecording(t);
    assert.deepEqual(r.differences, []);
    assert.deepEqual([r.functions, r.probeRuns, r.probeSteps], [want.functions, want.runs, want.steps]);
    assert.ok(r.fields > 4000, `only ${r.fields} values compared`);
  });
}

test('record: the recorded machines keep what tells them apart (device sets, groups, VT-d registers)', () => {
  const sets = (t: ReturnType<typeof recording>) =>
    new Host(t).deviceSets().map((s) => `${s.label}: ${s.devices.join(' ')}`);
  assert.deepEqual(sets(recording('devset-igb')), ['dev_set(bus 0000:01): 0000:01:00.0 0000:01:00.1', 'dev_set(bus 0000:02): 0000:02:00.0']);
  const igb = new Host(recording('devset-igb'));
  assert.deepEqual(
    igb.groups().map((g) => [g.id, g.devices]),
    [[4, ['0000:01:00.0']], [5, ['0000:01:00.1']], [6, ['0000:02:00.0']]],
  );
  // the group machine: the PCIe-to-PCI bridge (no driver) and both devices behind it in group 1
  const grp = new Process(new Host(recording('group')), { name: 'ls' });
  assert.deepEqual(grp.readdir('/sys/kernel/iommu_groups/1/devices')!.filter((d) => !d.startsWith('.')).sort(), ['0000:00:02.0', '0000:01:01.0', '0000:01:02.0']);
  // QEMU 11's VT-d (the igb machine) sets cap_reg bit 63 (ESRTPS), QEMU 7.2's does not
  assert.equal(recording('devset-igb').iommu.vtdCapReg, 0x80d2008c222f0686n);
  assert.equal(recording('default').iommu.vtdCapReg, 0xd2008c22260286n);
});

test('record: a recorded function boots with its recorded config bytes (sysfs config of a bridge, fn1 header type)', () => {
  const t = recording('default');
  const host = new Host(t);
  const p = new Process(host, { name: 'reader' });
  const rp = t.functions.find((f) => f.bdf === '0000:00:02.0')!;
  const cfg = p.readBytes(p.open('/sys/bus/pci/devices/0000:00:02.0/config', 0), 4096, 0)!;
  assert.deepEqual([...cfg], [...rp.recorded!.configRaw!]);
  // the root port as the real kernel left it: bus numbers, windows, command = 0x0507
  assert.deepEqual([...cfg.subarray(0x04, 0x06)], [0x07, 0x05]);
  assert.deepEqual([...cfg.subarray(0x18, 0x1b)], [0x00, 0x01, 0x01]);
});

test('record: the device fd reads the recorded bytes; writes follow vfio-pci\'s rules over them', () => {
  const t = recording('default');
  const e1000e = t.functions.find((f) => f.bdf === '0000:01:00.0')!;
  // a read-only register the model would build otherwise: the PCIe Link Capabilities (0xe0 + 0x0c)
  e1000e.recorded!.configRaw!.set([0x22, 0x4c, 0x73, 0x00], 0xec);
  const host = new Host(t);
  const p = new Process(host, { name: 'qemu' });
  const dev = vfio.open(p, '/dev/vfio/devices/vfio0');
  vfio.bindIommufd(p, dev, vfio.open(p, '/dev/iommu'));
  const cfg = 0x70000000000n;
  const read = (off: number, n: number) => [...p.readBytes(dev, n, cfg + BigInt(off))!];
  assert.deepEqual(read(0xec, 4), [0x22, 0x4c, 0x73, 0x00]);
  // COMMAND: 0x0103 as recorded; a write of memory + bus master reads back as written (as the
  // config-rw probe shows on the real kernel)
  assert.deepEqual(read(0x04, 2), [0x03, 0x01]);
  assert.equal(p.writeBytes(dev, new Uint8Array([0x06, 0x00]), cfg + 4n), 2);
  assert.deepEqual(read(0x04, 2), [0x06, 0x00]);
  // BAR0 sizing through the virtual BAR: the recorded 128 KiB BAR
  assert.equal(p.writeBytes(dev, new Uint8Array([0xff, 0xff, 0xff, 0xff]), cfg + 0x10n), 4);
  assert.deepEqual(read(0x10, 4), [0x00, 0x00, 0xfe, 0xff]);
});

test('record: without its recorded bytes, devset fn1 shows the model\'s multi-function bit; verify names both places', () => {
  const t = recording('devset');
  const fn1 = t.functions.find((f) => f.bdf === '0000:01:00.1')!;
  fn1.recorded!.configRaw = null;
  const line = 1 + t.recorded!.probes!.source.findIndex((l) => l.trim() === 'pread dev 64 0x70000000000');
  const r = verifyRecording(t);
  assert.deepEqual(
    r.differences.map((d) => [d.kind, d.where, d.step ?? '', d.kernel, d.vfiosim]),
    [
      ['capture', '0000:01:00.1 config @0x00c', '', '00 00 00 00', '00 00 80 00'],
      [
        'probe',
        `probe device-info on 0000:01:00.1, line ${line}`,
        'pread dev 64 0x70000000000',
        '= 64, bytes 8680d31003011000000000020000000000004cfe00004efe21c00000004050fe00000000000000000000000086800000000044fec8000000000000000b010000',
        '= 64, bytes 8680d31003011000000000020000800000004cfe00004efe21c00000004050fe00000000000000000000000086800000000044fec8000000000000000b010000 (first difference at byte 14: kernel 00, vfiosim 80)',
      ],
    ],
  );
});

test('record: verify reports a changed errno, a changed region flag and a missing group member', () => {
  const t = recording('default');
  const run = t.recorded!.probes!.runs.find((r) => r.seq === 'cdev-lifecycle')!;
  const step = run.steps!.find((s) => s.errno === 'EINVAL')!;
  step.errno = 'EPERM';
  const e1000e = t.functions.find((f) => f.bdf === '0000:01:00.0')!;
  ((e1000e.recorded!.capture.regions as Array<Record<string, unknown>>)[0]!).flags = 3;
  t.recorded!.iommuGroups.find((g) => g.id === 5)!.devices.push('0000:00:1f.4');
  const r = verifyRecording(t);
  assert.deepEqual(
    r.differences.map((d) => [d.kind, d.where, d.step ?? '', d.kernel, d.vfiosim]),
    [
      ['capture', '0000:01:00.0 regions[0].flags', '', '3', '7'],
      ['host', 'iommu group 5 devices[3]', '', '"0000:00:1f.4"', '(absent)'],
      ['probe', `probe cdev-lifecycle on 0000:01:00.0, line ${step.line}`, 'ioctl dev1 VFIO_DEVICE_GET_INFO buf 24 u32:24', '= -1 EPERM, bytes 180000000000000000000000000000000000000000000000', '= -1 EINVAL, bytes 180000000000000000000000000000000000000000000000'],
    ],
  );
  const text = formatVerifyReport(r);
  assert.match(text, /^host oracle-default \(recorded on Linux 7\.2\.13 by vfiosim-record 1\)\n/);
  assert.match(text, /\n0000:01:00\.0 regions\[0\]\.flags\n {2}kernel: {2}3\n {2}vfiosim: 7\n/);
  assert.match(text, /\n3 differences\n$/);
});

test('record: verify refuses what is not a recording, or a probe source that does not parse', () => {
  assert.throws(() => verifyRecording(new Host().topology), (e: unknown) => e instanceof VerifyError && e.message === 'default: not a recording (no top-level "recorded:" section; make one with "vfiosim record")');
  const t = recording('group');
  const at = t.recorded!.probes!.source.findIndex((l) => l.startsWith('seq cdev-lifecycle '));
  t.recorded!.probes!.source[at] = 'seq cdev-lifecycle sometimes';
  assert.throws(
    () => verifyRecording(t),
    (e: unknown) => e instanceof VerifyError && e.message === `the recording's probe source does not parse: recorded.probes.source:${at + 1}: seq cdev-lifecycle: "sometimes" must be each or first`,
  );
});

// ---- the format ------------------------------------------------------------------------------

test('record: a recording\'s sections are checked field by field', () => {
  const fn = (rec: string) => `functions:\n  - bdf: "0000:00:01.0"\n    id: "8086:10d3"\n    class: 0x020000\n    iommu_group: 3\n    recorded: ${rec}\n`;
  assert.deepEqual(problems(fn('{ config_raw: { size: 256, rows: { "004": "00" } } }')), [
    'functions[0].recorded.config_raw.rows."004": row offsets are three hex digits, a multiple of 0x10 below the size 0x100',
  ]);
  assert.deepEqual(problems(fn('{ config_raw: { size: 256, rows: { "010": "86 80" } } }')), [
    'functions[0].recorded.config_raw.rows."010": must be 16 hex bytes separated by spaces ("86 80 d3 10 ..."), got string "86 80"',
  ]);
  assert.deepEqual(problems(fn('{ config_raw: { size: 128 } }')), [
    'functions[0].recorded.config_raw.size: 128: a recorded config space is 256 or 4096 bytes (sysfs config read as root)',
  ]);
  assert.deepEqual(problems(fn('{ vfio_index: -1, via: pci, regions: 3, colour: red }')), [
    'functions[0].recorded.colour: unknown field (known: vfio_index, reset_method, config_raw, via, config, config_errors, device_info, regions, irqs, hot_reset, hot_reset_group, type1, iommufd, errors)',
    'functions[0].recorded.via: must be cdev or group, got "pci"',
    'functions[0].recorded.regions: must be a list, got number 3',
    'functions[0].recorded.vfio_index: -1 is out of range 0..65535',
  ]);
  const top = (rec: string) => fn('{}') + `recorded: ${rec}\n`;
  assert.deepEqual(problems(top('{ recorder: 1, module_params: { vfio_iommu_type1.dma_entry_limit: "lots" } }')), [
    'recorded.module_params.vfio_iommu_type1.dma_entry_limit: "lots" is not a valid uint value',
  ]);
  assert.deepEqual(
    problems(top('{ recorder: 1, probes: { format: 1, first_free_fd: 3, source: "seq", runs: [ { seq: a, bdf: b, cdev: c, groupdev: d, steps: [ { line: 0, ret: 0 }, { line: 2, ret: -1, errno: bad, out: "0g" } ] } ] } }')),
    [
      'recorded.probes.source: must be the probe file\'s lines (a list of strings), got string "seq"',
      'recorded.probes.runs[0].steps[0].line: 0 is out of range 1..1048576',
      'recorded.probes.runs[0].steps[1].errno: "bad" is not an errno name',
      'recorded.probes.runs[0].steps[1].out: must be lower-case hex bytes ("0a1b..."), got "0g"',
    ],
  );
});

test('record: recorded module parameters boot as the machine had them', () => {
  const t = recording('default');
  t.recorded!.moduleParams['vfio_iommu_type1.dma_entry_limit'] = '100';
  const text = readFileSync(join(HOSTS, 'oracle-default.yaml'), 'utf8').replace('vfio_iommu_type1.dma_entry_limit: "65535"', 'vfio_iommu_type1.dma_entry_limit: "100"');
  const host = new Host(parseTopology(text, 'x.yaml'));
  const p = new Process(host, { name: 'cat' });
  assert.equal(p.readFile('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit'), '100\n');
});

test('record: a zero tail of 32 bytes or more is written as out_zeros', () => {
  assert.deepEqual(encodeOut(new Uint8Array([1, 2, ...new Array(31).fill(0)])), { out: '0102' + '00'.repeat(31) });
  assert.deepEqual(encodeOut(new Uint8Array([1, 2, ...new Array(32).fill(0)])), { out: '0102', outZeros: 32 });
  assert.deepEqual(encodeOut(new Uint8Array(40)), { out: '', outZeros: 40 });
});

// ---- the C recorder ----------------------------------------------------------------------------

test('record: the C recorder and src/record/probes.ts read the probe language alike (parse, constants, errnos)', (t) => {
  if (!hasCc) {
    t.skip('no C compiler');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-rec-'));
  try {
    const bin = buildRecorder(join(dir, 'vfiosim-record'), { force: true });
    const c = spawnSync(bin, ['--parse-probes', PROBES_FILE], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout, normalizeProbes(parseProbes(readFileSync(PROBES_FILE, 'utf8'))));
    const consts = spawnSync(bin, ['--constants'], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(' '));
    assert.deepEqual(consts.map(([n]) => n), [...PROBE_CONSTANTS.keys()]);
    for (const [n, v] of consts) assert.equal(BigInt(v!), BigInt.asIntN(64, PROBE_CONSTANTS.get(n!)!), n);
    const errnos = spawnSync(bin, ['--errnos'], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(' '));
    assert.ok(errnos.length >= 40);
    for (const [e, name] of errnos) assert.equal(errnoName(Number(e)), name, `errno ${e}`);
    // a bad probe file fails before the machine is touched, with the line
    writeFileSync(join(dir, 'bad.txt'), 'seq x each\n  open\nend\n');
    const bad = spawnSync(bin, ['-P', join(dir, 'bad.txt')], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.throws(() => parseProbes('seq x each\n  open\nend\n', 'bad.txt'), /^ProbeSyntaxError: bad\.txt:2: open PATH \[FLAGS\]$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('record: vfiosim record on a machine without VFIO says why it cannot record (exit 1); bad usage is exit 2', async (t) => {
  const usage = await cli(['record', '-n', 'nic']);
  assert.deepEqual([usage.code, usage.stderr], [2, 'vfiosim record: -n wants BDF=NAME (e.g. 0000:01:00.0=nic), got "nic"\n']);
  const bdf = await cli(['record', '1:0.0']);
  assert.deepEqual([bdf.code, bdf.stderr], [2, 'vfiosim record: "1:0.0" is not a PCI address (DDDD:BB:DD.F)\n']);
  if (!hasCc) {
    t.skip('no C compiler: the recorder cannot be built here');
    return;
  }
  if (existsSync('/sys/bus/pci/drivers/vfio-pci') && existsSync('/dev/vfio')) {
    t.skip('this machine has VFIO: a real recording would run');
    return;
  }
  const r = await cli(['record', '--no-probes']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vfiosim-record: (must run as root: .*|no \/sys\/bus\/pci: .*|no VFIO: the vfio-pci driver is not loaded \(modprobe vfio-pci\)|no VFIO: \/dev\/vfio does not exist)\n$/);
});

test('record: vfiosim record runs the recorder with the probe file and the options, and checks what it wrote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-fake-'));
  try {
    // a stand-in recorder: logs its arguments, writes a shipped recording (or a broken one) to -o
    const fake = join(dir, 'fake-recorder');
    writeFileSync(
      fake,
      `#!/bin/sh\necho "$@" > ${dir}/args\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n` +
        `if [ -n "$BROKEN" ]; then echo 'functions: []' > "$out"; else cp ${join(HOSTS, 'oracle-group.yaml')} "$out"; fi\n`,
      { mode: 0o755 },
    );
    const out = join(dir, 'mine.yaml');
    const r = await cli(['record', '--recorder', fake, '-o', out, '--name', 'mine', '-n', '0000:01:01.0=edu', '01:01.0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, 'args'), 'utf8'), `-P ${PROBES_FILE} -o ${out} -N mine -n 0000:01:01.0=edu 0000:01:01.0\n`);
    assert.equal(r.stderr, `vfiosim record: wrote ${out}: 9 PCI functions, 3 recorded through VFIO; check it with "vfiosim verify ${out}"\n`);
    const broken = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js'), 'record', '--recorder', fake, '--no-probes', '-o', out], {
        env: { ...process.env, BROKEN: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      c.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(broken.code, 1);
    assert.equal(broken.stderr, `vfiosim record: the recorder wrote a file vfiosim cannot boot (please report it):\n${out}: invalid host topology:\n  functions: must be a non-empty list of PCI functions\n`);
    assert.equal(readFileSync(join(dir, 'args'), 'utf8'), `-o ${out}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('record: vfiosim verify prints the report and exits 0 on a shipped recording, 2 on a host that is not one', async () => {
  const ok = await cli(['verify', join(HOSTS, 'oracle-group.yaml')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(
    ok.stdout,
    'host oracle-group (recorded on Linux 7.2.13 by vfiosim-record 1)\n' +
      `  captures: 3 functions, groups and parameters: ${verifyRecording(recording('group')).fields} values compared: no difference\n` +
      '  probes: 19 runs, 391 steps: no difference\n\nno difference\n',
  );
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-verify-'));
  try {
    const plain = join(dir, 'plain.yaml');
    writeFileSync(plain, 'functions:\n  - { bdf: "0000:00:01.0", id: "8086:10d3", class: 0x020000, iommu_group: 3 }\n');
    const r = await cli(['verify', plain]);
    assert.deepEqual([r.code, r.stderr], [2, 'vfiosim verify: unnamed: not a recording (no top-level "recorded:" section; make one with "vfiosim record")\n']);
    const none = await cli(['verify']);
    assert.equal(none.code, 2);
    const missing = await cli(['verify', join(dir, 'missing.yaml')]);
    assert.deepEqual([missing.code, missing.stderr], [2, `vfiosim verify: cannot read ${join(dir, 'missing.yaml')}: ENOENT\n`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the oracle's lifecycle on the recorded default machine ------------------------------------

test('record: lifecycle.c\'s 47 steps on hosts/oracle-default.yaml (in process) match the real kernel byte for byte', () => {
  const host = new Host(recording('default'));
  assert.equal(lifecycleReplay(host, '/dev/vfio/devices/vfio0', '/dev/vfio/6', '0000:01:00.0'), LIFECYCLE_OUT);
  assert.deepEqual(host.kernel.warnings, []);
});

/** Linux 7.2's linux/vfio.h and linux/iommufd.h for cc, or null */
function uapiHeaders(): string | null {
  const home = homedir();
  for (const c of [
    process.env.VFIOSIM_UAPI_HEADERS,
    join(home, '.cache', 'vfiosim', 'selftests-vfio', 'hdr'),
    join(home, '.cache', 'vfio-oracle', 'current', 'headers', 'include'),
    join(home, '.cache', 'vfio-oracle', 'uapi-7.2'),
  ])
    if (c && existsSync(join(c, 'linux', 'vfio.h')) && existsSync(join(c, 'linux', 'iommufd.h'))) return c;
  return null;
}

test('record: the oracle\'s examples/lifecycle.c under "vfiosim exec --host hosts/oracle-default.yaml" prints lifecycle.out exactly', async (t) => {
  // a copy of ../shared/oracle/examples/lifecycle.c (MIT), whose real-kernel output is lifecycle.out
  const src = join(PACKAGE_ROOT, 'test', 'fixtures', 'lifecycle.c');
  const hdr = uapiHeaders();
  if (!hasCc || !hdr || !existsSync(src)) {
    t.skip(!existsSync(src) ? `no ${src}` : 'no C compiler or no Linux 7.2 uapi headers');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-lifecycle-'));
  try {
    const bin = join(dir, 'lifecycle');
    const cc = spawnSync('cc', ['-O1', '-Wall', '-I', hdr, '-o', bin, src], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const r = await cli(['exec', '--host', join(HOSTS, 'oracle-default.yaml'), '--', bin, '/dev/vfio/devices/vfio0', '/dev/vfio/6', '0000:01:00.0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, LIFECYCLE_OUT);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
