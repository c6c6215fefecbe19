#!/usr/bin/env node
// vfiosim command line.

import { readFileSync } from 'node:fs';
import { Host } from '../host/host.js';
import { HostConfigError } from '../host/topology.js';
import { DEFAULT_HOST_YAML } from '../host/default_host.js';
import { ScenarioError, parseScenario } from '../scenario/scenario.js';
import { RunResult, StepResult, runScenario, scenarioHost } from '../scenario/runner.js';
import { DEMO_SCENARIO } from './demo.js';
import { narrateStep, stepJson } from './narrate.js';
import { ExecError, execProgram, serve } from '../bridge/exec.js';
import { EXPLORE_HELP, exploreMain } from '../explore/cli.js';
import { RECORD_HELP, VERIFY_HELP, recordMain, verifyMain } from '../record/cli.js';

const VERSION = '0.1.0';

const HELP: Record<string, string> = {
  main: `vfiosim ${VERSION} - an executable twin of the Linux 7.2 VFIO device-access core

usage: vfiosim <command> [options]

commands:
  demo            narrate the VFIO lifecycle on the embedded default host
  run FILE        run a scenario file and print what each step did
  host            show a host: PCI functions, IOMMU groups, device sets, device nodes
  explore FILE    explore the interleavings of a scenario's threads (DPOR) and check invariants
  exec -- PROG    run a real program against the simulated host (LD_PRELOAD shim + daemon)
  serve           run the daemon alone, for several programs at once
  record          record this machine's VFIO functions as a host file (needs root, vfio-pci)
  verify FILE     check the simulator against a recorded host, step by step
  help [COMMAND]  show help for a command

Each command takes --help. Exit status: 0 success, 1 a scenario expectation failed,
2 bad usage or an invalid input file.`,
  demo: `usage: vfiosim demo [--json] [--verbose] [--no-color] [--scenario]

Runs, on the embedded default host, the legacy group/container flow and the iommufd cdev flow,
then shows the rules the design enforces (one group opener, no access before bind, one bind per
file, group/cdev exclusion, device sets, unregister waiting for users). Each syscall is printed
with its result and the kernel events it caused.

  --json        one JSON document with every step, its result and events
  --verbose     show every kernel event, not only the lifecycle ones
  --no-color    no ANSI colours (also when stdout is not a terminal)
  --scenario    print the demo as a scenario file (the format of "vfiosim run") and exit`,
  run: `usage: vfiosim run FILE [--host TOPOLOGY] [--json] [--verbose] [--no-color]

Runs a scenario file (YAML; see examples/ and the README's "Scenario files"): named processes
doing syscalls, administrator actions (bind, unbind, hot_unplug, advance) and expectations.
Prints each step with its result and the kernel events it caused.

  --host FILE   boot this topology instead of the scenario's "host"
  --json        one JSON document with every step, its result and events
  --verbose     show every kernel event
  --no-color    no ANSI colours

Exit status: 0 if every expectation held, 1 if one failed, 2 for an invalid file.`,
  host: `usage: vfiosim host [--host TOPOLOGY] [--json] [--dump]

Boots a host (the embedded default, or TOPOLOGY: a YAML or JSON file) and lists its PCI
functions with their driver, IOMMU group, vfio index, cdev and device set.

  --host FILE   the topology to boot
  --json        machine-readable listing
  --dump        print the embedded default topology (a starting point for your own)`,
  exec: `usage: vfiosim exec [--host TOPOLOGY] [--socket PATH] [--verbose] -- PROGRAM [ARG...]

Runs an unmodified, dynamically linked PROGRAM with the vfiosim shim preloaded: it sees the
simulated host's /dev/vfio, /dev/vfio/devices, /dev/iommu and sysfs trees (/sys/bus/pci,
/sys/kernel/iommu_groups, /sys/class/vfio*, /sys/devices/pci*, ...); every other path and fd
behaves as without the shim. Its children inherit the shim and the daemon.

If a daemon ("vfiosim serve") listens at the socket, the program uses it; otherwise a daemon
runs inside this command for the program's lifetime (at --socket PATH if given, else private).
The shim is built with the machine's cc on first use (npm run build:shim does it ahead).

  --host FILE     the topology to serve (default: the embedded default host)
  --socket PATH   the daemon's socket (default: $VFIOSIM_SOCKET, then the per-user socket of
                  "vfiosim serve" if one listens there)
  --verbose       log every bridged syscall to stderr

Exit status: the program's (128 + N if signal N ended it), 127 if PROGRAM was not found,
2 for bad usage or an invalid topology.`,
  explore: EXPLORE_HELP,
  record: RECORD_HELP,
  verify: VERIFY_HELP,
  serve: `usage: vfiosim serve [--host TOPOLOGY] [--socket PATH] [--verbose]

Runs the daemon alone: programs started with "vfiosim exec" (or with VFIOSIM_SOCKET=PATH and
LD_PRELOAD set to the shim) share one simulated host until SIGINT or SIGTERM.
The socket is owner-only (mode 0600); the default is $VFIOSIM_SOCKET, else
$XDG_RUNTIME_DIR/vfiosim.sock, else /tmp/vfiosim-UID/vfiosim.sock.

  --host FILE     the topology to serve (default: the embedded default host)
  --socket PATH   where to listen
  --verbose       log every bridged syscall to stderr`,
};

interface Flags {
  positional: string[];
  json: boolean;
  verbose: boolean;
  color: boolean;
  help: boolean;
  host?: string;
  scenario: boolean;
  dump: boolean;
  socket?: string;
  /** words after "--" (exec's program and its arguments) */
  rest: string[];
}

function parseArgs(argv: string[]): Flags {
  const f: Flags = {
    positional: [],
    json: false,
    verbose: false,
    color: process.stdout.isTTY === true,
    help: false,
    scenario: false,
    dump: false,
    rest: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--':
        f.rest = argv.slice(i + 1);
        i = argv.length;
        break;
      case '--socket':
        f.socket = argv[++i];
        if (!f.socket) throw new UsageError('--socket needs a PATH');
        break;
      case '--json':
        f.json = true;
        break;
      case '--verbose':
      case '-v':
        f.verbose = true;
        break;
      case '--no-color':
        f.color = false;
        break;
      case '--help':
      case '-h':
        f.help = true;
        break;
      case '--scenario':
        f.scenario = true;
        break;
      case '--dump':
        f.dump = true;
        break;
      case '--host':
        f.host = argv[++i];
        if (!f.host) throw new UsageError('--host needs a topology file');
        break;
      default:
        if (a.startsWith('--host=')) f.host = a.slice(7);
        else if (a.startsWith('--socket=')) f.socket = a.slice(9);
        else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
        else f.positional.push(a);
    }
  }
  return f;
}

class UsageError extends Error {}

function printRun(res: RunResult, f: Flags, title: string): number {
  const failures = res.failures.length;
  const warnings = res.host.kernel.warnings;
  if (f.json) {
    process.stdout.write(
      JSON.stringify(
        {
          scenario: title,
          description: res.scenario.description,
          host: res.host.topology.name,
          steps: res.results.map(stepJson),
          failures,
          warnings,
        },
        null,
        1,
      ) + '\n',
    );
  } else {
    process.stdout.write(`\nSummary: ${res.results.filter((r) => r.actor !== 'say').length} steps, ${failures} failed expectation(s), ${warnings.length} kernel warning(s)\n`);
  }
  return failures || warnings.length ? 1 : 0;
}

function runWithNarration(text: string, source: string, f: Flags): number {
  const sc = parseScenario(text, source);
  const host = scenarioHost(sc, f.host);
  if (!f.json) {
    process.stdout.write(`${sc.description || source}\nhost: ${host.topology.name}${host.topology.description ? ' - ' + host.topology.description.replace(/\s+/g, ' ') : ''}\n`);
  }
  const onStep = f.json ? undefined : (r: StepResult) => process.stdout.write(narrateStep(r, { verbose: f.verbose, color: f.color }) + '\n');
  const res = runScenario(sc, { hostObj: host, ...(onStep ? { onStep } : {}) });
  return printRun(res, f, source);
}

function cmdHost(f: Flags): number {
  if (f.dump) {
    process.stdout.write(DEFAULT_HOST_YAML);
    return 0;
  }
  const host = f.host ? Host.fromFile(f.host) : new Host();
  if (f.json) {
    process.stdout.write(
      JSON.stringify({ name: host.topology.name, devices: host.devices(), groups: host.groups(), deviceSets: host.deviceSets() }, null, 1) + '\n',
    );
    return 0;
  }
  const t = host.topology;
  process.stdout.write(`host ${t.name}${t.description ? ': ' + t.description.replace(/\s+/g, ' ') : ''}\n\n`);
  const rows = host.devices().map((d) => [
    d.bdf,
    d.name ?? '',
    d.vendorDevice,
    d.driver ?? '-',
    d.iommuGroup === null ? '-' : String(d.iommuGroup),
    d.vfio?.groupNode ?? '',
    d.vfio?.cdev ?? '',
    d.vfio ? d.vfio.devSet.replace(/^dev_set\((.*)\)$/, '$1') : '',
  ]);
  const head = ['bdf', 'name', 'id', 'driver', 'group', 'group node', 'cdev', 'device set'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  process.stdout.write(line(head) + '\n' + rows.map(line).join('\n') + '\n\n');
  for (const g of host.groups())
    process.stdout.write(`group ${g.id}: ${g.node}, devices ${g.devices.join(' ')}, ${g.viable ? 'viable' : 'not viable'}\n`);
  const nv = host.topology.functions.filter((fn) => fn.iommuGroup !== null && !host.groups().some((g) => g.id === fn.iommuGroup));
  const nvIds = [...new Set(nv.map((fn) => fn.iommuGroup))];
  if (nvIds.length) process.stdout.write(`IOMMU groups without a VFIO device: ${nvIds.join(', ')}\n`);
  return 0;
}

function bridgeLog(f: Flags): ((line: string) => void) | undefined {
  return f.verbose ? (line: string) => process.stderr.write(`vfiosim: ${line}\n`) : undefined;
}

function cmdExec(f: Flags): Promise<number> {
  const argv = f.rest.length ? f.rest : f.positional;
  if (!argv.length) throw new UsageError('exec needs a PROGRAM (vfiosim exec [options] -- PROGRAM [ARG...])');
  // validate the topology before starting anything
  const host = f.host ? Host.fromFile(f.host) : null;
  return execProgram({
    host: () => host ?? new Host(),
    ...(host ? { hostName: host.topology.name } : {}),
    ...(f.socket ? { socketPath: f.socket } : {}),
    argv,
    ...(f.verbose ? { log: bridgeLog(f)! } : {}),
  });
}

function cmdServe(f: Flags): Promise<number> {
  if (f.positional.length || f.rest.length) throw new UsageError('serve takes no arguments');
  const host = f.host ? Host.fromFile(f.host) : new Host();
  return serve(host, f.socket, bridgeLog(f));
}

/** Errors of the commands, as messages and exit codes. */
function reportError(cmd: string, e: unknown): number {
  if (e instanceof UsageError || e instanceof ScenarioError || e instanceof HostConfigError) {
    process.stderr.write(`vfiosim ${cmd}: ${e.message}\n`);
    return 2;
  }
  if (e instanceof ExecError) {
    process.stderr.write(`vfiosim ${cmd}: ${e.message}\n`);
    return e.code;
  }
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    process.stderr.write(`vfiosim ${cmd}: ${(e as Error).message}\n`);
    return 2;
  }
  throw e;
}

export function main(argv: string[]): number | Promise<number> {
  // the explorer parses its own options
  if (argv[0] === 'explore') return exploreMain(argv.slice(1));
  if (argv[0] === 'record') return recordMain(argv.slice(1));
  if (argv[0] === 'verify') return verifyMain(argv.slice(1));
  let f: Flags;
  try {
    f = parseArgs(argv.slice(1));
  } catch (e) {
    process.stderr.write(`vfiosim: ${(e as Error).message}\n${HELP.main}\n`);
    return 2;
  }
  const cmd = argv[0];
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const topic = cmd === 'help' ? f.positional[0] : undefined;
    process.stdout.write((topic && HELP[topic] ? HELP[topic] : HELP.main) + '\n');
    return 0;
  }
  if (cmd === '--version') {
    process.stdout.write(`vfiosim ${VERSION}\n`);
    return 0;
  }
  if (f.help) {
    if (!HELP[cmd]) {
      process.stderr.write(`vfiosim: unknown command "${cmd}"\n\n${HELP.main}\n`);
      return 2;
    }
    process.stdout.write(HELP[cmd] + '\n');
    return 0;
  }
  try {
    switch (cmd) {
      case 'demo':
        if (f.scenario) {
          process.stdout.write(DEMO_SCENARIO);
          return 0;
        }
        return runWithNarration(DEMO_SCENARIO, 'demo', f);
      case 'run': {
        const file = f.positional[0];
        if (!file) throw new UsageError('run needs a scenario FILE');
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (e) {
          throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        return runWithNarration(text, file, f);
      }
      case 'host':
        return cmdHost(f);
      case 'exec':
        return cmdExec(f).catch((e: unknown) => reportError(cmd, e));
      case 'serve':
        return cmdServe(f).catch((e: unknown) => reportError(cmd, e));
      default:
        process.stderr.write(`vfiosim: unknown command "${cmd}"\n\n${HELP.main}\n`);
        return 2;
    }
  } catch (e) {
    return reportError(cmd, e);
  }
}

const invoked = process.argv[1] ?? '';
if (invoked.endsWith('main.js') || invoked.endsWith('vfiosim')) {
  const r = main(process.argv.slice(2));
  if (typeof r === 'number') process.exitCode = r;
  else
    void r.then((code) => {
      process.exitCode = code;
      // the daemon's handles are closed; nothing else should keep this process alive
    });
}
