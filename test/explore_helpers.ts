// Helpers of the explorer's tests: scenarios from text, DPOR vs brute force, a crafted variant.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scenario, parseScenario } from '../src/scenario/scenario.js';
import { loadScenario } from '../src/scenario/runner.js';
import { Engine, EngineOptions, traceKey } from '../src/explore/engine.js';
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

export function engineOptions(over: Partial<EngineOptions> = {}): EngineOptions {
  return {
    strategy: 'dpor',
    variant: null,
    timeouts: 1,
    depth: 20000,
    stopOnViolation: false,
    maxExecutions: Infinity,
    timeLimitMs: Infinity,
    preemptions: 2,
    runs: 100,
    seed: 1,
    pctDepth: 3,
    countTraces: true,
    ...over,
  };
}

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
