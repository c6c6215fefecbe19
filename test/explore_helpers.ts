// Helpers of the explorer's tests: scenarios from text, DPOR vs brute force, a crafted variant.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exploreMain } from '../src/explore/cli.js';
import { Scenario, parseScenario } from '../src/scenario/scenario.js';
import { loadScenario } from '../src/scenario/runner.js';
import { Engine, EngineOptions, engineOptionsWith, traceKey } from '../src/explore/engine.js';
import { Execution, prepareScenario } from '../src/explore/execution.js';
import { Variant } from '../src/explore/variants.js';
import type { KGen } from '../src/kernel/sched.js';
import { mutexLock, mutexUnlock } from '../src/kernel/sync.js';
import type { VfioGroup } from '../src/vfio/vfio.js';

const here = dirname(fileURLToPath(import.meta.url));
/** the repository root (tests run from dist/test) */
export const ROOT = join(here, '..', '..');
export const EXAMPLES = join(ROOT, 'examples', 'explore');
export const SMALL_HOST = join(EXAMPLES, 'small-host.yaml');

export function example(name: string): Scenario {
  return loadScenario(join(EXAMPLES, name));
}

/** A scenario from YAML text on the small host (`host:` may be left out). */
export function scenario(yaml: string, source = '<test>'): Scenario {
  const text = /^host:/m.test(yaml) ? yaml : `host: ${JSON.stringify(SMALL_HOST)}\n${yaml}`;
  return parseScenario(text, source);
}

export const engineOptions = engineOptionsWith;

/** The trace keys of every execution a strategy explores. */
export function traces(sc: Scenario, over: Partial<EngineOptions> = {}): { executions: number; keys: Set<string>; sleepBlocked: number } {
  const prep = prepareScenario(sc);
  const e = new Engine(prep, engineOptions(over));
  const keys = new Set<string>();
  const x = e as unknown as { finished(ex: Execution, cut?: boolean): void };
  const orig = x.finished.bind(e);
  x.finished = (ex: Execution, cut?: boolean) => {
    keys.add(traceKey(ex.events));
    orig(ex, cut);
  };
  const st = e.run();
  return { executions: st.executions, keys, sleepBlocked: st.sleepBlocked };
}

/**
 * A crafted variant for the deadlock and lock-order tests: GET_STATUS takes the group lock then
 * the group's device lock, UNSET_CONTAINER the device lock then the group lock (AB-BA).
 */
export const abba: Variant = {
  name: 'abba',
  title: 'GET_STATUS and UNSET_CONTAINER take the group and device locks in opposite orders',
  description: 'a crafted lock inversion (tests only)',
  overrides: {
    vfio_group_ioctl_get_status: function* (group: VfioGroup): KGen<number> {
      yield* mutexLock(group.groupLock);
      yield* mutexLock(group.deviceLock);
      yield* mutexUnlock(group.deviceLock);
      yield* mutexUnlock(group.groupLock);
      return 0;
    },
    vfio_group_ioctl_unset_container: function* (group: VfioGroup): KGen<number> {
      yield* mutexLock(group.deviceLock);
      yield* mutexLock(group.groupLock);
      yield* mutexUnlock(group.groupLock);
      yield* mutexUnlock(group.deviceLock);
      return 0;
    },
  },
};

/**
 * `vfiosim explore ARGS` run in this process (the command's own code, its output captured): no
 * child process, so nothing depends on the machine's load or on dist/ being rewritten meanwhile.
 */
export async function cli(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const status = await exploreMain(args, {
      out: (t) => void (stdout += t),
      err: (t) => void (stderr += t),
      outTTY: false,
      errTTY: false,
    });
    return { status, stdout, stderr };
  } finally {
    process.chdir(cwd);
  }
}

/**
 * A directory with Linux 7.2's linux/vfio.h and linux/iommufd.h as headers_install exports them
 * (the selftests' or the oracle's copy, else made from the 7.2 source tree as oracle-cc does), or
 * null when none is at hand.
 */
export function uapiHeaders(): string | null {
  const home = homedir();
  const candidates = [
    process.env.VFIOSIM_UAPI_HEADERS,
    join(home, '.cache', 'vfiosim', 'selftests-vfio', 'hdr'),
    join(home, '.cache', 'vfio-oracle', 'current', 'headers', 'include'),
    join(home, '.cache', 'vfio-oracle', 'uapi-7.2'),
  ];
  for (const c of candidates) if (c && existsSync(join(c, 'linux', 'vfio.h')) && existsSync(join(c, 'linux', 'iommufd.h'))) return c;
  const src = join(home, '.cache', 'vfiosim', 'linux-source-7.2', 'include', 'uapi', 'linux');
  if (!existsSync(join(src, 'vfio.h'))) return null;
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-uapi-'));
  mkdirSync(join(dir, 'linux'));
  for (const h of ['vfio.h', 'iommufd.h'])
    writeFileSync(join(dir, 'linux', h), readFileSync(join(src, h), 'utf8').replace(/__user/g, '').replace(/__counted_by\([a-z_]*\)/g, ''));
  return dir;
}
