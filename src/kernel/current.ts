// Helpers about `current` that need the process type: its memory and its capabilities.

import { Process } from './process.js';
import { current, currentOrNull } from './sched.js';
import { UserMemory } from './uaccess.js';

const noMm: UserMemory = {
  read: () => null,
  write: () => false,
};

/** The user memory of the current task's process (kernel threads have none: every access faults). */
export function currentMm(): UserMemory {
  const p = current().proc as Process | null;
  return p ? p.mm : noMm;
}

export function currentProcess(): Process | null {
  return (currentOrNull()?.proc as Process | null | undefined) ?? null;
}

/** capable(CAP_...): kernel threads are fully privileged. */
export function capable(cap: string): boolean {
  const p = currentProcess();
  return p ? p.capable(cap) : true;
}
