// `vfiosim record` and `vfiosim verify`.
//
// record builds the shipped C recorder (record/vfiosim-record.c) with the machine's cc and runs it
// with the shipped probe file (record/probes.txt): a recording needs root and functions bound to
// vfio-pci, and the recorder says so when the machine lacks them. `record --build FILE [--static]`
// only builds it, for a machine without Node (copy the binary and record/probes.txt there).
// verify boots a recording and reports every difference between it and the simulator.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NATIVE_DIR, PACKAGE_ROOT } from '../bridge/native.js';
import { HostConfigError, parseTopology } from '../host/topology.js';
import { VerifyError, formatVerifyReport, verifyRecording } from './verify.js';

export const RECORDER_SOURCE = join(PACKAGE_ROOT, 'record', 'vfiosim-record.c');
export const PROBES_FILE = join(PACKAGE_ROOT, 'record', 'probes.txt');

export const RECORD_HELP = `usage: vfiosim record [-o FILE] [--name NAME] [--description TEXT] [-n BDF=NAME]...
                      [--probes FILE | --no-probes] [--recorder BIN] [BDF...]
       vfiosim record --build FILE [--static]

Records the machine it runs on as a vfiosim host: every PCI function (IDs, class, BARs,
capabilities, config space, IOMMU group, driver, reset methods) and, for the functions bound to
vfio-pci (all of them, or the BDFs given), what VFIO answers: the config space through the
device fd, region and IRQ info, hot-reset info (the device set), type1 GET_INFO and iommufd
IOVA ranges, IOMMU_GET_HW_INFO; then it runs the probe sequences (record/probes.txt) and stores
every result. Boot the file with --host FILE; check the simulator against it with
"vfiosim verify FILE".

Needs root and functions bound to vfio-pci. The capture is a C program (record/vfiosim-record.c)
built here with cc; on a machine without Node, build it elsewhere with --build FILE --static and
run "FILE -P probes.txt -o out.yaml" there.

  -o FILE              write the recording here (default: stdout)
  --name NAME          the host's name (default "recorded")
  --description TEXT   its description
  -n BDF=NAME          a friendly name for a function (repeatable)
  --probes FILE        the probe sequences to run (default: the shipped record/probes.txt)
  --no-probes          record without running probes
  --recorder BIN       run this recorder binary instead of building one
  --build FILE         only build the recorder into FILE (--static: statically linked)

Exit status: 0 recorded, 1 this machine cannot be recorded (the message says why),
2 bad usage or no C compiler.`;

export const VERIFY_HELP = `usage: vfiosim verify FILE [--json]

Boots a recorded host (made by "vfiosim record") and replays on the simulator what the recorder
did on the real machine: the same VFIO captures of every recorded function (config space through
vfio-pci, device, region and IRQ info, hot-reset info, type1 and iommufd answers), the IOMMU
groups and module parameters in sysfs, and every step of the stored probe runs. Reports each
difference: where (function and field, or probe sequence, function and line), the kernel's
answer and the simulator's.

  --json   the report as JSON

Exit status: 0 no difference, 1 differences, 2 an invalid file.`;

class UsageError extends Error {}

function fail(msg: string, code: number): number {
  process.stderr.write(`vfiosim record: ${msg}\n`);
  return code;
}

/** Where `vfiosim record` keeps the recorder it builds: dist/native, or a temp dir if that is read-only. */
function defaultRecorderPath(): string {
  try {
    mkdirSync(NATIVE_DIR, { recursive: true });
    accessSync(NATIVE_DIR, constants.W_OK);
    return join(NATIVE_DIR, 'vfiosim-record');
  } catch {
    return join(tmpdir(), `vfiosim-record-${process.getuid?.() ?? 0}`, 'vfiosim-record');
  }
}

/** Build the recorder (if missing or older than its source); returns the binary's path. */
export function buildRecorder(out = defaultRecorderPath(), opts: { static?: boolean; force?: boolean } = {}): string {
  if (!existsSync(RECORDER_SOURCE)) throw new UsageError(`the recorder's source ${RECORDER_SOURCE} is missing from this installation`);
  if (!opts.force && existsSync(out) && statSync(out).mtimeMs >= statSync(RECORDER_SOURCE).mtimeMs) return out;
  try {
    mkdirSync(dirname(out), { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create ${dirname(out)} for the recorder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const args = ['-std=gnu11', '-O2', '-Wall', ...(opts.static ? ['-static'] : []), '-o', out, RECORDER_SOURCE];
  try {
    execFileSync(process.env.CC ?? 'cc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT')
      throw new UsageError(
        `no C compiler (${process.env.CC ?? 'cc'}) to build the recorder: install one, or build ${RECORDER_SOURCE} on another machine ` +
          `("vfiosim record --build FILE --static") and run it here`,
      );
    throw new UsageError(`building the recorder failed (${process.env.CC ?? 'cc'} ${args.join(' ')}):\n${err.stderr?.toString() ?? String(e)}`);
  }
  return out;
}

export function recordMain(argv: string[]): number {
  const rec: string[] = [];
  let probes: string | null = PROBES_FILE;
  let recorder: string | null = null;
  let build: string | null = null;
  let isStatic = false;
  let outFile: string | null = null;
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const val = (what: string): string => {
        const v = argv[++i];
        if (v === undefined || v === '') throw new UsageError(`${a} needs ${what}`);
        return v;
      };
      switch (a) {
        case '-h':
        case '--help':
          process.stdout.write(RECORD_HELP + '\n');
          return 0;
        case '-o':
        case '--output':
          outFile = val('a FILE');
          rec.push('-o', outFile);
          break;
        case '--name':
        case '-N':
          rec.push('-N', val('a NAME'));
          break;
        case '--description':
        case '-D':
          rec.push('-D', val('a TEXT'));
          break;
        case '-n': {
          const v = val('BDF=NAME');
          if (!/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]=\S+$/.test(v)) throw new UsageError(`-n wants BDF=NAME (e.g. 0000:01:00.0=nic), got "${v}"`);
          rec.push('-n', v);
          break;
        }
        case '--probes':
          probes = val('a FILE');
          break;
        case '--no-probes':
          probes = null;
          break;
        case '--recorder':
          recorder = val('a BIN');
          break;
        case '--build':
          build = val('a FILE');
          break;
        case '--static':
          isStatic = true;
          break;
        default:
          if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
          if (!/^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(a)) throw new UsageError(`"${a}" is not a PCI address (DDDD:BB:DD.F)`);
          rec.push(a.length === 7 ? `0000:${a}` : a);
      }
    }
    if (build) {
      if (rec.length || recorder) throw new UsageError('--build takes only --static');
      const bin = buildRecorder(build, { static: isStatic, force: true });
      process.stdout.write(`built ${bin}${isStatic ? ' (static)' : ''}; run it as root on the machine to record: ${bin} -P probes.txt -o host.yaml (probes.txt: ${PROBES_FILE})\n`);
      return 0;
    }
    if (isStatic) throw new UsageError('--static goes with --build FILE');
    if (probes !== null && !existsSync(probes)) throw new UsageError(`no probe file ${probes}`);
    const bin = recorder ?? buildRecorder();
    if (!existsSync(bin)) throw new UsageError(`no recorder binary ${bin}`);
    const args = [...(probes ? ['-P', probes] : []), ...rec];
    const r = spawnSync(bin, args, { stdio: 'inherit' });
    if (r.error) return fail(`cannot run the recorder ${bin}: ${r.error.message}`, 2);
    if (r.signal) return fail(`the recorder was killed by ${r.signal}`, 1);
    if (r.status !== 0) return r.status ?? 1;
    if (outFile) {
      // what was written must boot: a recording is a host file
      const t = parseTopology(readFileSync(outFile, 'utf8'), outFile);
      const n = t.recorded?.selected?.length ?? 0;
      process.stderr.write(`vfiosim record: wrote ${outFile}: ${t.functions.length} PCI functions, ${n} recorded through VFIO; check it with "vfiosim verify ${outFile}"\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, 2);
    if (e instanceof HostConfigError) return fail(`the recorder wrote a file vfiosim cannot boot (please report it):\n${e.message}`, 1);
    throw e;
  }
}

export function verifyMain(argv: string[]): number {
  let json = false;
  const files: string[] = [];
  for (const a of argv) {
    if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(VERIFY_HELP + '\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`vfiosim verify: unknown option ${a}\n${VERIFY_HELP}\n`);
      return 2;
    } else files.push(a);
  }
  if (files.length !== 1) {
    process.stderr.write(`vfiosim verify: needs one recorded host FILE\n${VERIFY_HELP}\n`);
    return 2;
  }
  const file = files[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`vfiosim verify: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  try {
    const report = verifyRecording(parseTopology(text, file));
    process.stdout.write(json ? JSON.stringify(report, null, 1) + '\n' : formatVerifyReport(report));
    return report.differences.length ? 1 : 0;
  } catch (e) {
    if (e instanceof HostConfigError || e instanceof VerifyError) {
      process.stderr.write(`vfiosim verify: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
