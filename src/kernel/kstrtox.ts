// lib/kstrtox.c: the string-to-integer conversions sysfs stores use (kstrtoull, kstrtou16,
// kstrtoint, kstrtobool). A value may end with one newline; anything else after the digits, no
// digits at all, or a sign where none is allowed is -EINVAL; a value out of range is -ERANGE.

import { EINVAL, ERANGE } from './errno.js';

/** _kstrtoull: [0, value] or [-errno, 0] */
export function kstrtoull(s: string, base: number): [number, bigint] {
  let i = 0;
  if (s[0] === '+') i++;
  // _parse_integer_fixup_radix
  if (base === 0) {
    if (s[i] === '0') {
      if ((s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) {
        base = 16;
        i += 2;
      } else base = 8;
    } else base = 10;
  } else if (base === 16 && s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X')) i += 2;
  let v = 0n;
  let n = 0;
  for (; i < s.length; i++, n++) {
    const c = s[i]!.toLowerCase();
    const d = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'f' ? c.charCodeAt(0) - 87 : 99;
    if (d >= base) break;
    v = v * BigInt(base) + BigInt(d);
    if (v > 0xffffffffffffffffn) return [-ERANGE, 0n];
  }
  if (n === 0) return [-EINVAL, 0n];
  if (s[i] === '\n') i++;
  if (i !== s.length) return [-EINVAL, 0n];
  return [0, v];
}

/** kstrtou16 (and kstrtouint etc. through `max`) */
export function kstrtoul(s: string, base: number, max: bigint): [number, number] {
  const [r, v] = kstrtoull(s, base);
  if (r) return [r, 0];
  if (v > max) return [-ERANGE, 0];
  return [0, Number(v)];
}

export const kstrtou16 = (s: string, base: number): [number, number] => kstrtoul(s, base, 0xffffn);

/** kstrtoint: a leading '-' makes it negative; range of a 32-bit int */
export function kstrtoint(s: string, base: number): [number, number] {
  if (s[0] === '-') {
    const [r, v] = kstrtoull(s.slice(1), base);
    if (r) return [r, 0];
    if (v > 0x80000000n) return [-ERANGE, 0];
    return [0, -Number(v)];
  }
  return kstrtoul(s, base, 0x7fffffffn);
}

/** kstrtobool: y/Y/t/T/1/on -> true, n/N/f/F/0/off -> false (only the first characters count) */
export function kstrtobool(s: string): [number, boolean] {
  switch (s[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1':
      return [0, true];
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0':
      return [0, false];
    case 'o':
    case 'O':
      if (s[1] === 'n' || s[1] === 'N') return [0, true];
      if (s[1] === 'f' || s[1] === 'F') return [0, false];
  }
  return [-EINVAL, false];
}
