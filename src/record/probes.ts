// The probe language (record/probes.txt): fixed sequences of syscalls that vfiosim-record runs on
// a real machine (record/vfiosim-record.c, which stores each step's result in the recording) and
// that this module runs on the simulator through the public Process API, so that a recording can
// be checked against the model step by step. The grammar is described at the top of
// record/probes.txt; this parser accepts exactly what the C parser accepts (the tests compare their
// normalised outputs), and the interpreter gives each step the C interpreter's semantics.

import { errnoName } from '../kernel/errno.js';
import * as U from '../uapi/index.js';
import { Process } from '../api/process.js';
import type { Host } from '../host/host.js';

export const PROBE_FORMAT = 1;

export type Need = 'cdev' | 'iommufd' | 'group' | 'container';
const NEED_BITS: Record<Need, number> = { cdev: 1, iommufd: 2, group: 4, container: 8 };

export type Term =
  | { kind: 'num'; op: '' | '|' | '+'; value: bigint }
  | { kind: 'var'; op: '' | '|' | '+'; name: string }
  | { kind: 'field'; op: '' | '|' | '+'; name: string; off: number };

export interface Expr {
  terms: Term[];
}

export interface Item {
  off: number;
  /** bytes */
  width: number;
  signed: boolean;
  expr?: Expr;
  hex?: Uint8Array;
}

interface StepBase {
  /** 1-based line in the source */
  line: number;
  label?: string;
}
export type Step =
  | (StepBase & { op: 'open'; path: string; flags: Expr })
  | (StepBase & { op: 'close' | 'dup'; fd: string })
  | (StepBase & { op: 'eventfd' })
  | (StepBase & { op: 'mem'; len: number })
  | (StepBase & { op: 'peek'; mem: string; off: Expr; len: number })
  | (StepBase & { op: 'pread'; fd: string; len: number; off: Expr })
  | (StepBase & { op: 'pwrite'; fd: string; off: Expr; len: number; items: Item[] })
  | (StepBase & {
      op: 'ioctl';
      fd: string;
      req: number;
      arg: { kind: 'none' } | { kind: 'val'; expr: Expr } | { kind: 'str'; text: string } | { kind: 'buf'; len: number; items: Item[] } | { kind: 'fault' };
    });

export interface Sequence {
  name: string;
  /** once per function (each) or once on the first */
  each: boolean;
  needs: Need[];
  line: number;
  steps: Step[];
}

export interface ProbeFile {
  /** the source, one entry per line (line N is source[N - 1]) */
  source: string[];
  sequences: Sequence[];
}

export class ProbeSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'ProbeSyntaxError';
  }
}

// ---- constants: the same vocabulary as the C recorder's table, values from the uapi tables ----

/** The names a probe file may use (record/vfiosim-record.c's CONSTANTS, in its order). */
export const PROBE_CONSTANT_NAMES: readonly string[] = [
  'VFIO_GET_API_VERSION', 'VFIO_CHECK_EXTENSION', 'VFIO_SET_IOMMU',
  'VFIO_GROUP_GET_STATUS', 'VFIO_GROUP_SET_CONTAINER', 'VFIO_GROUP_UNSET_CONTAINER', 'VFIO_GROUP_GET_DEVICE_FD',
  'VFIO_DEVICE_GET_INFO', 'VFIO_DEVICE_GET_REGION_INFO', 'VFIO_DEVICE_GET_IRQ_INFO', 'VFIO_DEVICE_SET_IRQS', 'VFIO_DEVICE_RESET',
  'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO', 'VFIO_DEVICE_PCI_HOT_RESET', 'VFIO_DEVICE_IOEVENTFD', 'VFIO_DEVICE_FEATURE',
  'VFIO_DEVICE_BIND_IOMMUFD', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  'VFIO_IOMMU_GET_INFO', 'VFIO_IOMMU_MAP_DMA', 'VFIO_IOMMU_UNMAP_DMA', 'VFIO_IOMMU_DIRTY_PAGES',
  'IOMMU_DESTROY', 'IOMMU_IOAS_ALLOC', 'IOMMU_IOAS_ALLOW_IOVAS', 'IOMMU_IOAS_COPY', 'IOMMU_IOAS_IOVA_RANGES', 'IOMMU_IOAS_MAP',
  'IOMMU_IOAS_UNMAP', 'IOMMU_OPTION', 'IOMMU_VFIO_IOAS', 'IOMMU_HWPT_ALLOC', 'IOMMU_GET_HW_INFO', 'IOMMU_IOAS_MAP_FILE',
  'VFIO_API_VERSION', 'VFIO_TYPE1_IOMMU', 'VFIO_SPAPR_TCE_IOMMU', 'VFIO_TYPE1v2_IOMMU', 'VFIO_DMA_CC_IOMMU', 'VFIO_EEH',
  'VFIO_SPAPR_TCE_v2_IOMMU', 'VFIO_NOIOMMU_IOMMU', 'VFIO_UNMAP_ALL', 'VFIO_UPDATE_VADDR',
  'VFIO_GROUP_FLAGS_VIABLE', 'VFIO_GROUP_FLAGS_CONTAINER_SET', 'VFIO_DEVICE_FLAGS_RESET', 'VFIO_DEVICE_FLAGS_PCI', 'VFIO_DEVICE_FLAGS_CAPS',
  'VFIO_DEVICE_BIND_FLAG_TOKEN', 'VFIO_DEVICE_ATTACH_PASID', 'VFIO_DEVICE_DETACH_PASID',
  'VFIO_PCI_BAR0_REGION_INDEX', 'VFIO_PCI_ROM_REGION_INDEX', 'VFIO_PCI_CONFIG_REGION_INDEX', 'VFIO_PCI_VGA_REGION_INDEX',
  'VFIO_PCI_INTX_IRQ_INDEX', 'VFIO_PCI_MSI_IRQ_INDEX', 'VFIO_PCI_MSIX_IRQ_INDEX', 'VFIO_PCI_ERR_IRQ_INDEX', 'VFIO_PCI_REQ_IRQ_INDEX',
  'VFIO_IRQ_SET_DATA_NONE', 'VFIO_IRQ_SET_DATA_BOOL', 'VFIO_IRQ_SET_DATA_EVENTFD', 'VFIO_IRQ_SET_ACTION_MASK',
  'VFIO_IRQ_SET_ACTION_UNMASK', 'VFIO_IRQ_SET_ACTION_TRIGGER',
  'VFIO_PCI_HOT_RESET_FLAG_DEV_ID', 'VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED',
  'VFIO_DEVICE_FEATURE_GET', 'VFIO_DEVICE_FEATURE_SET', 'VFIO_DEVICE_FEATURE_PROBE',
  'VFIO_DMA_MAP_FLAG_READ', 'VFIO_DMA_MAP_FLAG_WRITE', 'VFIO_DMA_MAP_FLAG_VADDR',
  'VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP', 'VFIO_DMA_UNMAP_FLAG_ALL', 'VFIO_DMA_UNMAP_FLAG_VADDR',
  'IOMMU_IOAS_MAP_FIXED_IOVA', 'IOMMU_IOAS_MAP_WRITEABLE', 'IOMMU_IOAS_MAP_READABLE',
  'IOMMU_OPTION_RLIMIT_MODE', 'IOMMU_OPTION_HUGE_PAGES', 'IOMMU_OPTION_OP_SET', 'IOMMU_OPTION_OP_GET',
  'IOMMU_VFIO_IOAS_GET', 'IOMMU_VFIO_IOAS_SET', 'IOMMU_VFIO_IOAS_CLEAR', 'IOMMU_HWPT_DATA_NONE',
  'IOMMU_HW_INFO_TYPE_NONE', 'IOMMU_HW_INFO_TYPE_INTEL_VTD',
  'O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_NONBLOCK', 'O_CLOEXEC',
];

const OPEN_FLAGS: Record<string, number> = { O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_NONBLOCK: 0o4000, O_CLOEXEC: 0o2000000 };

/** name -> value, from the uapi tables (every name must resolve) */
export const PROBE_CONSTANTS: ReadonlyMap<string, bigint> = new Map(
  PROBE_CONSTANT_NAMES.map((n) => {
    const v = n in OPEN_FLAGS ? OPEN_FLAGS[n] : (U as unknown as Record<string, unknown>)[n];
    if (typeof v !== 'number') throw new Error(`probe constant ${n} is not in the uapi tables`);
    return [n, BigInt(v)];
  }),
);

// ---- parser ----

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const TYPES: Record<string, { width: number; signed: boolean }> = {
  u8: { width: 1, signed: false }, u16: { width: 2, signed: false }, u32: { width: 4, signed: false }, u64: { width: 8, signed: false },
  s8: { width: 1, signed: true }, s16: { width: 2, signed: true }, s32: { width: 4, signed: true }, s64: { width: 8, signed: true },
};
const MASK64 = (1n << 64n) - 1n;

/** A C integer literal as strtoll/strtoull(s, &end, 0) reads it (whole string), or null. */
export function parseCNumber(s: string): bigint | null {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return null;
  const body = m[2]!;
  const v = /^0[xX]/.test(body) ? BigInt(body) : body.length > 1 && body[0] === '0' ? BigInt('0o' + body.slice(1)) : BigInt(body);
  if (m[1] === '-') return v > 1n << 63n ? null : -v;
  return v > MASK64 ? null : v;
}

/** the value as C's %lld prints a long long holding it */
function lld(v: bigint): string {
  return BigInt.asIntN(64, v).toString();
}

class Parser {
  constructor(private readonly file: string) {}
  fail(line: number, msg: string): never {
    throw new ProbeSyntaxError(this.file, line, msg);
  }
  expr(line: number, s: string): Expr {
    const terms: Term[] = [];
    let op: '' | '|' | '+' = '';
    let i = 0;
    for (;;) {
      let j = i;
      while (j < s.length && s[j] !== '|' && (s[j] !== '+' || j === i)) j++;
      const t = s.slice(i, j);
      if (terms.length === 8) this.fail(line, `expression "${s}" has too many terms`);
      if (!t) this.fail(line, `empty term in "${s}"`);
      if (t[0] === '$') {
        const at = t.indexOf('@');
        const name = at >= 0 ? t.slice(1, at) : t.slice(1);
        let off = 0;
        if (at >= 0) {
          const o = parseCNumber(t.slice(at + 1));
          if (o === null || o < 0n) this.fail(line, `bad field offset in "${s}"`);
          off = Number(o);
        }
        if (!IDENT.test(name) || name.length >= 32) this.fail(line, `bad variable "${at >= 0 ? t.slice(0, at) : t}"`);
        terms.push(at >= 0 ? { kind: 'field', op, name, off } : { kind: 'var', op, name });
      } else {
        const n = parseCNumber(t);
        const v = n ?? PROBE_CONSTANTS.get(t);
        if (v === undefined) this.fail(line, `unknown constant "${t}"`);
        terms.push({ kind: 'num', op, value: v & MASK64 });
      }
      if (j >= s.length) break;
      op = s[j] as '|' | '+';
      i = j + 1;
      if (i >= s.length) this.fail(line, `expression "${s}" ends with "${op}"`);
    }
    return { terms };
  }
  len(line: number, s: string): number {
    const v = parseCNumber(s);
    if (v === null || v < 0n || v > 1n << 20n) this.fail(line, `bad length "${s}" (0..1048576)`);
    return Number(v);
  }
  fd(line: number, s: string): string {
    if (!IDENT.test(s) && parseCNumber(s) === null) this.fail(line, `"${s}" is not an fd (a label or a number)`);
    return s;
  }
  items(line: number, toks: string[], len: number): Item[] {
    const items: Item[] = [];
    let cursor = 0;
    for (const t of toks) {
      if (t[0] === '@') {
        const o = parseCNumber(t.slice(1));
        if (o === null || o < 0n || o > BigInt(len)) this.fail(line, `bad offset "${t}" (the buffer has ${len} bytes)`);
        cursor = Number(o);
        continue;
      }
      const colon = t.indexOf(':');
      if (colon < 0) this.fail(line, `"${t}" is not an item (TYPE:VALUE, hex:BYTES or @OFFSET)`);
      if (items.length === 24) this.fail(line, 'too many items');
      const type = t.slice(0, colon);
      const value = t.slice(colon + 1);
      let it: Item;
      if (type === 'hex') {
        if (value.length % 2 || !/^[0-9a-fA-F]*$/.test(value) || value.length / 2 > 64) this.fail(line, `bad hex bytes "${value}"`);
        const hex = Uint8Array.from(value.match(/../g) ?? [], (h) => parseInt(h, 16));
        it = { off: cursor, width: hex.length, signed: false, hex };
      } else {
        const ty = TYPES[type];
        if (!ty) this.fail(line, `unknown item type "${type}" (u8 u16 u32 u64 s8 s16 s32 s64 hex)`);
        it = { off: cursor, width: ty.width, signed: ty.signed, expr: this.expr(line, value) };
      }
      if (it.off + it.width > len) this.fail(line, `item ${type}:${value} at offset ${it.off} runs past the ${len}-byte buffer`);
      items.push(it);
      cursor = it.off + it.width;
    }
    return items;
  }
}

/** Parse a probe file. Throws ProbeSyntaxError ("file:line: problem"). */
export function parseProbes(text: string, file = 'probes.txt'): ProbeFile {
  const P: Parser = new Parser(file);
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const sequences: Sequence[] = [];
  let cur: Sequence | null = null;
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.length >= 1024) P.fail(line, 'line longer than 1023 characters');
    const code = raw.includes('#') ? raw.slice(0, raw.indexOf('#')) : raw;
    const tok = code.split(/[ \t\r]+/).filter((t) => t !== '');
    if (!tok.length) return;
    if (tok[0] === 'seq') {
      if (cur) P.fail(line, `seq inside seq ${cur.name} (missing end)`);
      if (tok.length < 3) P.fail(line, 'seq needs a NAME and each|first');
      const name = tok[1]!;
      if (!IDENT.test(name) || name.length >= 48) P.fail(line, `bad sequence name "${name}"`);
      if (sequences.some((s) => s.name === name)) P.fail(line, `a second sequence named ${name}`);
      if (tok[2] !== 'each' && tok[2] !== 'first') P.fail(line, `seq ${name}: "${tok[2]}" must be each or first`);
      const needs: Need[] = [];
      if (tok.length > 3) {
        if (tok[3] !== 'needs') P.fail(line, `seq ${name}: expected "needs", got "${tok[3]}"`);
        for (const n of tok.slice(4)) {
          if (!(n in NEED_BITS)) P.fail(line, `seq ${name}: unknown need "${n}" (cdev iommufd group container)`);
          if (!needs.includes(n as Need)) needs.push(n as Need);
        }
      }
      cur = { name, each: tok[2] === 'each', needs, line, steps: [] };
      sequences.push(cur);
      return;
    }
    if (tok[0] === 'end') {
      if (!cur) P.fail(line, 'end without seq');
      if (tok.length !== 1) P.fail(line, 'end takes nothing');
      if (!cur.steps.length) P.fail(line, `sequence ${cur.name} has no steps`);
      cur = null;
      return;
    }
    if (!cur) P.fail(line, `"${tok[0]}" outside a sequence (seq NAME each|first ... end)`);
    let k = 0;
    let label: string | undefined;
    if (tok.length >= 2 && tok[1] === '=') {
      if (!IDENT.test(tok[0]!) || tok[0]!.length >= 32) P.fail(line, `bad label "${tok[0]}"`);
      label = tok[0]!;
      k = 2;
    }
    if (k >= tok.length) P.fail(line, `missing operation after "${label} ="`);
    const op = tok[k++]!;
    const av = tok.slice(k);
    const base = { line, ...(label ? { label } : {}) };
    let step: Step;
    switch (op) {
      case 'open':
        if (av.length < 1 || av.length > 2) P.fail(line, 'open PATH [FLAGS]');
        step = { ...base, op, path: av[0]!, flags: P.expr(line, av[1] ?? 'O_RDWR') };
        break;
      case 'close':
      case 'dup':
        if (av.length !== 1) P.fail(line, `${op} FD`);
        step = { ...base, op, fd: P.fd(line, av[0]!) };
        break;
      case 'eventfd':
        if (av.length) P.fail(line, 'eventfd takes nothing');
        step = { ...base, op };
        break;
      case 'mem': {
        if (av.length !== 1 || !label) P.fail(line, 'LABEL = mem LENGTH');
        const len = P.len(line, av[0]!);
        if (!len || len % 4096) P.fail(line, 'mem length must be a non-zero multiple of 4096');
        step = { ...base, op, len };
        break;
      }
      case 'peek':
        if (av.length !== 3 || !IDENT.test(av[0]!)) P.fail(line, 'peek MEMLABEL OFFSET LENGTH');
        step = { ...base, op, mem: av[0]!, off: P.expr(line, av[1]!), len: P.len(line, av[2]!) };
        break;
      case 'pread':
        if (av.length !== 3) P.fail(line, 'pread FD LENGTH OFFSET');
        step = { ...base, op, fd: P.fd(line, av[0]!), len: P.len(line, av[1]!), off: P.expr(line, av[2]!) };
        break;
      case 'pwrite': {
        if (av.length < 3) P.fail(line, 'pwrite FD OFFSET LENGTH ITEM...');
        const fd = P.fd(line, av[0]!);
        const off = P.expr(line, av[1]!);
        const len = P.len(line, av[2]!);
        step = { ...base, op, fd, off, len, items: P.items(line, av.slice(3), len) };
        break;
      }
      case 'ioctl': {
        if (av.length < 2) P.fail(line, 'ioctl FD REQUEST [val EXPR | str TEXT | buf LENGTH ITEM... | fault]');
        const fd = P.fd(line, av[0]!);
        const rv = PROBE_CONSTANTS.get(av[1]!) ?? parseCNumber(av[1]!);
        if (rv === null || rv === undefined) P.fail(line, `unknown ioctl "${av[1]}"`);
        const req = Number(BigInt.asUintN(32, rv));
        let arg: Extract<Step, { op: 'ioctl' }>['arg'];
        if (av.length === 2) arg = { kind: 'none' };
        else if (av[2] === 'val') {
          if (av.length !== 4) P.fail(line, 'val takes one value');
          arg = { kind: 'val', expr: P.expr(line, av[3]!) };
        } else if (av[2] === 'str') {
          if (av.length < 4) P.fail(line, 'str needs text');
          // the raw text after the "str" token, up to a comment, without surrounding blanks
          const m = /^\s*(?:\S+\s*=\s*)?ioctl\s+\S+\s+\S+\s+str[ \t]+(.*)$/.exec(raw);
          let text = m ? m[1]! : av.slice(3).join(' ');
          if (text.includes('#')) text = text.slice(0, text.indexOf('#'));
          arg = { kind: 'str', text: text.replace(/[ \t\r]+$/, '') };
        } else if (av[2] === 'buf') {
          if (av.length < 4) P.fail(line, 'buf needs a LENGTH');
          const len = P.len(line, av[3]!);
          if (!len) P.fail(line, 'buf length must be at least 1');
          arg = { kind: 'buf', len, items: P.items(line, av.slice(4), len) };
        } else if (av[2] === 'fault') {
          if (av.length !== 3) P.fail(line, 'fault takes nothing');
          arg = { kind: 'fault' };
        } else P.fail(line, `unknown ioctl argument "${av[2]}" (val, str, buf, fault)`);
        step = { ...base, op, fd, req, arg };
        break;
      }
      default:
        P.fail(line, `unknown operation "${op}" (open close dup ioctl pread pwrite mem peek eventfd)`);
    }
    cur.steps.push(step);
  });
  if (cur) P.fail(lines.length, `sequence ${(cur as Sequence).name} has no end`);
  return { source: lines, sequences };
}

function exprStr(e: Expr): string {
  return e.terms
    .map((t, i) => (i ? t.op : '') + (t.kind === 'num' ? lld(t.value) : t.kind === 'var' ? `$${t.name}` : `$${t.name}@${t.off}`))
    .join('');
}

/** The normalised listing, byte for byte what `vfiosim-record --parse-probes` prints. */
export function normalizeProbes(pf: ProbeFile): string {
  const out: string[] = [];
  for (const s of pf.sequences) {
    const needs = s.needs.reduce((a, n) => a | NEED_BITS[n], 0);
    out.push(`seq ${s.name} ${s.each ? 'each' : 'first'} needs=${needs} line=${s.line}`);
    for (const st of s.steps) {
      let l = `  ${st.line} ${st.op}${st.label ? ` label=${st.label}` : ''}`;
      let items: Item[] = [];
      switch (st.op) {
        case 'open':
          l += ` path=${st.path} flags=${exprStr(st.flags)}`;
          break;
        case 'close':
        case 'dup':
          l += ` fd=${st.fd}`;
          break;
        case 'mem':
          l += ` len=${st.len}`;
          break;
        case 'peek':
          l += ` mem=${st.mem} off=${exprStr(st.off)} len=${st.len}`;
          break;
        case 'pread':
          l += ` fd=${st.fd} len=${st.len} off=${exprStr(st.off)}`;
          break;
        case 'pwrite':
          l += ` fd=${st.fd} off=${exprStr(st.off)} len=${st.len}`;
          items = st.items;
          break;
        case 'ioctl':
          l += ` fd=${st.fd} req=0x${st.req.toString(16)} arg=${st.arg.kind}`;
          if (st.arg.kind === 'val') l += ` val=${exprStr(st.arg.expr)}`;
          else if (st.arg.kind === 'str') l += ` str=${st.arg.text}`;
          else if (st.arg.kind === 'buf') {
            l += ` len=${st.arg.len}`;
            items = st.arg.items;
          }
          break;
        case 'eventfd':
          break;
      }
      for (const it of items)
        l += it.hex
          ? ` @${it.off}=hex:${Buffer.from(it.hex).toString('hex')}`
          : ` @${it.off}=${it.signed ? 's' : 'u'}${it.width * 8}:${exprStr(it.expr!)}`;
      out.push(l);
    }
  }
  return out.join('\n') + (out.length ? '\n' : '');
}

// ---- interpreter ----

/** One step's outcome, in the recording's shape. */
export interface StepResult {
  line: number;
  ret?: number;
  errno?: string;
  /** hex of the bytes the step recorded (an ioctl's buffer after the call, pread, peek) */
  out?: string;
  /** a zero tail of at least OUT_ZEROS_MIN bytes left out of `out` (its length) */
  outZeros?: number;
  /** the step could not be run (an unset variable; in the simulator: an exception) */
  error?: string;
}

export interface ProbeRun {
  seq: string;
  bdf: string;
  cdev: string;
  groupdev: string;
  skipped?: string;
  steps?: StepResult[];
}

/** The function a run probes and its variables. */
export interface ProbeTarget {
  bdf: string;
  /** /dev/vfio/devices/vfioN, or '' */
  cdev: string;
  /** /dev/vfio/N or /dev/vfio/noiommu-N, or '' */
  groupdev: string;
  /** IOMMU group number, -1 if none */
  group: number;
  /** vfio index, -1 if none (orders the targets) */
  index: number;
}

/** The simulated host's vfio-pci functions as probe targets, in vfio index order. */
export function probeTargets(host: Host, bdfs?: string[]): ProbeTarget[] {
  const want = bdfs?.map((b) => host.bdf(b));
  return host
    .devices()
    .filter((d) => d.vfio && (!want || want.includes(d.bdf)))
    .map((d) => ({
      bdf: d.bdf,
      cdev: d.vfio!.cdev ?? '',
      groupdev: d.vfio!.groupNode ?? '',
      group: d.iommuGroup ?? -1,
      index: d.vfio!.index,
    }))
    .sort((a, b) => a.index - b.index || (a.bdf < b.bdf ? -1 : 1));
}

/** A step's recorded bytes as the recorder writes them: a zero tail of 32 bytes or more is cut off. */
export const OUT_ZEROS_MIN = 32;
export function encodeOut(b: Uint8Array): { out: string; outZeros?: number } {
  let keep = b.length;
  while (keep && !b[keep - 1]) keep--;
  if (b.length - keep < OUT_ZEROS_MIN) keep = b.length;
  const out = Buffer.from(b.subarray(0, keep)).toString('hex');
  return keep < b.length ? { out, outZeros: b.length - keep } : { out };
}

class RunError extends Error {}

interface Var {
  val: bigint;
  out?: Uint8Array;
  mem?: { addr: number; len: number };
}

class Interp {
  private readonly vars = new Map<string, Var>();
  private readonly mems: Array<[number, number]> = [];
  private fault = 0;
  constructor(
    private readonly p: Process,
    private readonly t: ProbeTarget,
  ) {}

  private devvar(name: string): string | undefined {
    switch (name) {
      case 'bdf':
        return this.t.bdf;
      case 'cdev':
        return this.t.cdev;
      case 'groupdev':
        return this.t.groupdev;
      case 'group':
        return String(this.t.group);
    }
    return undefined;
  }

  private eval(e: Expr, width: number): bigint {
    let acc = 0n;
    e.terms.forEach((t, i) => {
      let v: bigint;
      if (t.kind === 'num') v = t.value;
      else {
        const x = this.vars.get(t.name);
        if (t.kind === 'var' && !x && t.name === 'group') v = BigInt(this.t.group);
        else if (!x) throw new RunError(`$${t.name} is not set`);
        else if (t.kind === 'var') v = x.val;
        else {
          const w = width || 4;
          if (!x.out || t.off + w > x.out.length) throw new RunError(`$${t.name}@${t.off}: no ${w} bytes there`);
          v = 0n;
          for (let b = w - 1; b >= 0; b--) v = (v << 8n) | BigInt(x.out[t.off + b]!);
        }
      }
      v &= MASK64;
      acc = i === 0 ? v : t.op === '|' ? acc | v : (acc + v) & MASK64;
    });
    return acc;
  }

  private subst(s: string): string {
    return s.replace(/\$([A-Za-z0-9_]*)/g, (_m, name: string) => {
      const x = this.vars.get(name);
      if (x) return lld(x.val);
      const d = this.devvar(name);
      if (d === undefined) throw new RunError(`$${name} is not set`);
      return d;
    });
  }

  private fd(s: string): number {
    const n = parseCNumber(s);
    if (n !== null) return Number(BigInt.asIntN(32, n));
    const x = this.vars.get(s);
    if (!x) throw new RunError(`fd ${s} is not set`);
    return Number(BigInt.asIntN(32, x.val));
  }

  private fill(items: Item[], len: number): Uint8Array {
    const b = new Uint8Array(len);
    for (const it of items) {
      if (it.hex) {
        b.set(it.hex, it.off);
        continue;
      }
      let v = this.eval(it.expr!, it.width);
      for (let i = 0; i < it.width; i++) {
        b[it.off + i] = Number(v & 0xffn);
        v >>= 8n;
      }
    }
    return b;
  }

  /** an item holding a mem's address is the machine's own: recorded as zeros */
  private mask(items: Item[], b: Uint8Array): void {
    for (const it of items)
      if (it.expr?.terms.some((t) => t.kind === 'var' && this.vars.get(t.name)?.mem)) b.fill(0, it.off, it.off + it.width);
  }

  private alloc(len: number): number {
    const a = this.p.mem.alloc(len);
    this.mems.push([a, len]);
    return a;
  }

  private setLabel(st: Step, v: Var): void {
    if (st.label) this.vars.set(st.label, v);
  }

  /** libc's answer: the return value, and errno when it is -1 */
  private res(st: Step, r: number, out?: Uint8Array): StepResult {
    const res: StepResult = { line: st.line, ret: r };
    if (r < 0) res.errno = errnoName(this.p.errno);
    if (out) Object.assign(res, encodeOut(out));
    return res;
  }

  step(st: Step): StepResult {
    const p = this.p;
    try {
      switch (st.op) {
        case 'open': {
          const path = this.subst(st.path);
          const r = p.open(path, Number(BigInt.asIntN(32, this.eval(st.flags, 0))));
          this.setLabel(st, { val: BigInt(r) });
          return this.res(st, r);
        }
        case 'close':
        case 'dup': {
          const fd = this.fd(st.fd);
          const r = st.op === 'close' ? p.close(fd) : p.dup(fd);
          this.setLabel(st, { val: BigInt(r) });
          return this.res(st, r);
        }
        case 'eventfd': {
          const r = p.eventfd(0, 0);
          this.setLabel(st, { val: BigInt(r) });
          return this.res(st, r);
        }
        case 'mem': {
          let al = 4096;
          while (al < st.len) al *= 2;
          const base = p.mem.alloc(st.len + al);
          this.mems.push([base, st.len + al]);
          const addr = Math.ceil(base / al) * al;
          this.setLabel(st, { val: BigInt(addr), mem: { addr, len: st.len } });
          return { line: st.line, ret: 0 };
        }
        case 'peek': {
          const x = this.vars.get(st.mem);
          if (!x?.mem) throw new RunError(`${st.mem} is not a mem label`);
          const off = this.eval(st.off, 0);
          if (off + BigInt(st.len) > BigInt(x.mem.len)) throw new RunError(`peek past the end of ${st.mem}`);
          const out = p.mem.read(x.mem.addr + Number(off), st.len);
          this.setLabel(st, { val: 0n, out });
          return { line: st.line, ret: 0, ...encodeOut(out) };
        }
        case 'pread': {
          const fd = this.fd(st.fd);
          const off = this.eval(st.off, 0);
          const buf = this.alloc(st.len);
          const r = p.pread(fd, buf, st.len, off);
          const out = p.mem.read(buf, st.len);
          this.setLabel(st, { val: BigInt(r), out });
          return this.res(st, r, out);
        }
        case 'pwrite': {
          const fd = this.fd(st.fd);
          const off = this.eval(st.off, 0);
          const buf = this.alloc(st.len);
          p.mem.write(buf, this.fill(st.items, st.len));
          const r = p.pwrite(fd, buf, st.len, off);
          this.setLabel(st, { val: BigInt(r) });
          return this.res(st, r);
        }
        case 'ioctl': {
          const fd = this.fd(st.fd);
          const a = st.arg;
          let arg: number | bigint = 0;
          let buf = 0;
          if (a.kind === 'val') arg = this.eval(a.expr, 0);
          else if (a.kind === 'str') {
            const b = new TextEncoder().encode(this.subst(a.text) + '\0');
            arg = this.alloc(b.length);
            p.mem.write(arg, b);
          } else if (a.kind === 'buf') {
            buf = this.alloc(a.len);
            p.mem.write(buf, this.fill(a.items, a.len));
            arg = buf;
          } else if (a.kind === 'fault') {
            if (!this.fault) {
              this.fault = this.alloc(4096);
              p.mem.protect(this.fault, 4096, 0);
            }
            arg = this.fault;
          }
          if (typeof arg === 'bigint' && arg <= BigInt(Number.MAX_SAFE_INTEGER)) arg = Number(arg);
          const r = p.ioctl(fd, st.req, arg);
          let out: Uint8Array | undefined;
          if (a.kind === 'buf') {
            out = p.mem.read(buf, a.len);
            this.mask(a.items, out);
          }
          this.setLabel(st, { val: BigInt(r), ...(out ? { out } : {}) });
          return this.res(st, r, out);
        }
      }
    } catch (e) {
      this.setLabel(st, { val: -1n });
      if (e instanceof RunError) return { line: st.line, error: e.message };
      return { line: st.line, error: `simulator: ${(e as Error).message ?? String(e)}` };
    }
  }

  /** the end of a sequence: every fd above 2 closed, memory unmapped */
  cleanup(): void {
    for (const fd of this.p.fds()) if (fd > 2) this.p.close(fd);
    for (const [a, len] of this.mems) this.p.mem.free(a, len);
    this.mems.length = 0;
  }
}

function needMissing(p: Process, t: ProbeTarget, needs: Need[]): string | null {
  const exists = (path: string) => path !== '' && p.stat(path) !== null;
  for (const n of needs) {
    if (n === 'cdev' && !exists(t.cdev)) return 'no vfio cdev';
    if (n === 'iommufd' && !exists('/dev/iommu')) return 'no /dev/iommu';
    if (n === 'group' && !t.groupdev) return 'no vfio group';
    if (n === 'container' && !exists('/dev/vfio/vfio')) return 'no /dev/vfio/vfio';
  }
  return null;
}

/**
 * Run the probe sequences on a simulated host, as vfiosim-record runs them on a real one: each
 * run in a fresh process (fds 0-2 open), `each` sequences once per target in vfio index order,
 * `first` ones on the first target. Returns the runs in the recording's shape.
 */
export function runProbes(host: Host, pf: ProbeFile, opts: { targets?: ProbeTarget[] } = {}): ProbeRun[] {
  const targets = opts.targets ?? probeTargets(host);
  const runs: ProbeRun[] = [];
  for (const seq of pf.sequences) {
    for (const t of seq.each ? targets : targets.slice(0, 1)) {
      const p = new Process(host, { name: `probe-${seq.name}` });
      const run: ProbeRun = { seq: seq.name, bdf: t.bdf, cdev: t.cdev, groupdev: t.groupdev };
      const missing = needMissing(p, t, seq.needs);
      if (missing) run.skipped = missing;
      else {
        const it = new Interp(p, t);
        run.steps = seq.steps.map((st) => it.step(st));
        it.cleanup();
      }
      p.exit(0);
      runs.push(run);
    }
  }
  return runs;
}
