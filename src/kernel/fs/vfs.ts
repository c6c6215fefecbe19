// A small VFS: one tree of nodes (directories, symlinks, char-device nodes, sysfs attributes,
// dynamic /proc entries) with path walking, stat, readlink and readdir. devtmpfs (/dev) and
// sysfs (/sys) are subtrees with their own st_dev.

import { EACCES, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR } from '../errno.js';
import { KGen } from '../sched.js';
import { DevT, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from './file.js';

export interface FsInfo {
  name: string;
  dev: DevT;
}

let nextIno = 1000;

export abstract class VNode {
  name: string;
  parent: DirNode | null = null;
  readonly ino: number;
  mode: number;
  uid = 0;
  gid = 0;
  fs: FsInfo;
  constructor(name: string, mode: number, fs: FsInfo) {
    this.name = name;
    this.mode = mode;
    this.fs = fs;
    this.ino = nextIno++;
  }
  /** absolute path of this node (d_path) */
  path(): string {
    const parts: string[] = [];
    let n: VNode | null = this;
    while (n && n.parent) {
      parts.push(n.name);
      n = n.parent;
    }
    return '/' + parts.reverse().join('/');
  }
  abstract readonly type: 'dir' | 'link' | 'chr' | 'attr' | 'file';
}

export class DirNode extends VNode {
  readonly type = 'dir' as const;
  readonly children = new Map<string, VNode>();
  constructor(name: string, fs: FsInfo, mode = 0o755) {
    super(name, S_IFDIR | mode, fs);
  }
  /** Child lookup; dynamic directories override. */
  lookup(name: string): VNode | undefined {
    return this.children.get(name);
  }
  list(): VNode[] {
    return [...this.children.values()];
  }
  add<T extends VNode>(n: T): T {
    n.parent = this;
    this.children.set(n.name, n);
    return n;
  }
  remove(name: string): void {
    const n = this.children.get(name);
    if (n) n.parent = null;
    this.children.delete(name);
  }
}

export class LinkNode extends VNode {
  readonly type = 'link' as const;
  constructor(
    name: string,
    public target: string,
    fs: FsInfo,
  ) {
    super(name, S_IFLNK | 0o777, fs);
  }
}

/** A device node in devtmpfs: opening it goes through the char-device registry. */
export class ChrNode extends VNode {
  readonly type = 'chr' as const;
  constructor(
    name: string,
    public rdev: DevT,
    mode: number,
    fs: FsInfo,
  ) {
    super(name, S_IFCHR | mode, fs);
  }
}

/** A sysfs attribute: show produces the content, store consumes a write. */
export interface AttrOps {
  show?: () => string | Uint8Array | number;
  /** returns bytes consumed or a negative errno; may block (e.g. driver unbind) */
  store?: (data: string) => KGen<number>;
  /** st_size (a binary attribute's size; 4096 for ordinary attributes) */
  size?: number;
}

export class AttrNode extends VNode {
  readonly type = 'attr' as const;
  constructor(
    name: string,
    public ops: AttrOps,
    mode: number,
    fs: FsInfo,
  ) {
    super(name, S_IFREG | mode, fs);
  }
}

/** A directory whose entries are computed on demand (/proc, /proc/PID/fd). */
export class DynDirNode extends DirNode {
  constructor(
    name: string,
    fs: FsInfo,
    private readonly dynLookup: (name: string) => VNode | undefined,
    private readonly dynList: () => VNode[],
  ) {
    super(name, fs, 0o555);
  }
  override lookup(name: string): VNode | undefined {
    const n = this.children.get(name) ?? this.dynLookup(name);
    if (n && !n.parent) n.parent = this;
    return n;
  }
  override list(): VNode[] {
    const out = [...this.children.values()];
    for (const n of this.dynList()) {
      if (!n.parent) n.parent = this;
      out.push(n);
    }
    return out;
  }
}

export interface Stat {
  dev: number;
  devMajor: number;
  devMinor: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  rdevMajor: number;
  rdevMinor: number;
  size: number;
  blksize: number;
  blocks: number;
}

export const DT_UNKNOWN = 0;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

export function dtype(n: VNode): number {
  switch (n.type) {
    case 'dir':
      return DT_DIR;
    case 'link':
      return DT_LNK;
    case 'chr':
      return DT_CHR;
    default:
      return DT_REG;
  }
}

const MAX_SYMLINKS = 40;
const PATH_MAX = 4096;

export interface Credentials {
  uid: number;
  gid: number;
  /** capability names held, e.g. CAP_SYS_RAWIO */
  caps: Set<string>;
}

/** The mount tree. */
export class Vfs {
  readonly rootFs: FsInfo = { name: 'rootfs', dev: { major: 0, minor: 1 } };
  readonly root: DirNode;
  constructor() {
    this.root = new DirNode('', this.rootFs);
  }

  /** Create (mkdir -p) a directory for `path`, new directories on filesystem `fs`. */
  mkdirp(path: string, fs?: FsInfo): DirNode {
    let d = this.root;
    for (const part of split(path)) {
      let n = d.lookup(part);
      if (!n) n = d.add(new DirNode(part, fs ?? d.fs));
      if (n.type === 'link') {
        const r = this.resolve(n.path(), true);
        if (typeof r === 'number' || r.type !== 'dir') throw new Error(`mkdirp: ${path}: not a directory`);
        n = r;
      }
      if (n.type !== 'dir') throw new Error(`mkdirp: ${path}: not a directory`);
      d = n as DirNode;
    }
    return d;
  }

  /** Parent directory and final name of a path (the parent must exist). */
  private parentOf(path: string): [DirNode, string] {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) throw new Error(`bad path ${path}`);
    const d = this.mkdirp('/' + parts.join('/'));
    return [d, name];
  }

  addNode<T extends VNode>(path: string, make: (name: string, fs: FsInfo) => T): T {
    const [d, name] = this.parentOf(path);
    return d.add(make(name, d.fs));
  }

  addLink(path: string, target: string): LinkNode {
    return this.addNode(path, (n, fs) => new LinkNode(n, target, fs));
  }

  /** A symlink at `path` pointing to `targetAbs`, written relative like sysfs does. */
  addRelLink(path: string, targetAbs: string): LinkNode {
    return this.addLink(path, relativePath(dirname(path), targetAbs));
  }

  addAttr(path: string, ops: AttrOps, mode?: number): AttrNode {
    const m = mode ?? ((ops.show ? 0o444 : 0) | (ops.store ? 0o200 : 0));
    return this.addNode(path, (n, fs) => new AttrNode(n, ops, m, fs));
  }

  /** Remove the node at `path` (with its subtree); no error if absent. */
  remove(path: string): void {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) return;
    const d = this.lookupNoFollow('/' + parts.join('/'));
    if (d && d.type === 'dir') (d as DirNode).remove(name);
  }

  exists(path: string): boolean {
    return typeof this.resolve(path, false) !== 'number';
  }

  /** Walk without following the last component and without resolving links in the middle. */
  lookupNoFollow(path: string): VNode | undefined {
    let n: VNode = this.root;
    for (const part of split(path)) {
      if (n.type !== 'dir') return undefined;
      const c = (n as DirNode).lookup(part);
      if (!c) return undefined;
      n = c;
    }
    return n;
  }

  /**
   * Path walk (fs/namei.c): follows symlinks in the middle, and at the end if `follow`.
   * Returns the node or a negative errno (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EACCES).
   */
  resolve(path: string, follow: boolean, cwd = '/', cred?: Credentials): VNode | number {
    if (path.length >= PATH_MAX) return -ENAMETOOLONG;
    if (path === '') return -ENOENT;
    let links = 0;
    const walk = (start: DirNode, p: string, followLast: boolean): VNode | number => {
      let n: VNode = p.startsWith('/') ? this.root : start;
      const parts = p.split('/').filter((x) => x !== '' && x !== '.');
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        const last = i === parts.length - 1;
        if (n.type !== 'dir') return -ENOTDIR;
        if (cred && !mayExec(n, cred)) return -EACCES;
        let c: VNode | undefined;
        if (part === '..') c = n.parent ?? n;
        else c = (n as DirNode).lookup(part);
        if (!c) return -ENOENT;
        if (c.type === 'link' && (!last || followLast)) {
          if (++links > MAX_SYMLINKS) return -ELOOP;
          const r = walk(n as DirNode, (c as LinkNode).target, true);
          if (typeof r === 'number') return r;
          c = r;
        }
        n = c;
      }
      if (p.endsWith('/') && n.type !== 'dir') return -ENOTDIR;
      return n;
    };
    const start = this.resolve0(cwd);
    return walk(start, path, follow);
  }

  private resolve0(cwd: string): DirNode {
    const r = cwd === '/' ? this.root : this.resolve(cwd, true);
    return typeof r !== 'number' && r.type === 'dir' ? (r as DirNode) : this.root;
  }

  /** realpath(3) */
  realpath(path: string, cwd = '/'): string | number {
    const r = this.resolve(path, true, cwd);
    if (typeof r === 'number') return r;
    return r.path();
  }
}

export function mayExec(n: VNode, cred: Credentials): boolean {
  if (cred.uid === 0 || cred.caps.has('CAP_DAC_OVERRIDE') || cred.caps.has('CAP_DAC_READ_SEARCH')) return true;
  return permBits(n, cred) & 1 ? true : false;
}

/** The rwx bits that apply to `cred` for node `n` (owner, group or other). */
export function permBits(n: VNode, cred: Credentials): number {
  if (cred.uid === n.uid) return (n.mode >> 6) & 7;
  if (cred.gid === n.gid) return (n.mode >> 3) & 7;
  return n.mode & 7;
}

/** generic_permission for read/write access to a node. */
export function mayOpen(n: VNode, cred: Credentials, wantRead: boolean, wantWrite: boolean): number {
  if (n.type === 'dir' && wantWrite) return -EISDIR;
  if (cred.uid === 0 || cred.caps.has('CAP_DAC_OVERRIDE')) return 0;
  const bits = permBits(n, cred);
  if (wantRead && !(bits & 4)) return -EACCES;
  if (wantWrite && !(bits & 2)) return -EACCES;
  return 0;
}

export function split(path: string): string[] {
  return path.split('/').filter((x) => x !== '' && x !== '.');
}

export function dirname(path: string): string {
  const parts = split(path);
  parts.pop();
  return '/' + parts.join('/');
}

export function basename(path: string): string {
  const parts = split(path);
  return parts[parts.length - 1] ?? '/';
}

/**
 * The relative path from directory `fromDir` to `to` (both absolute), as sysfs links use. As in
 * fs/kernfs/symlink.c: kernfs_get_target_path, the walk goes up to a *proper* ancestor of the
 * target and names the target from there (a link to an ancestor reads "../../../<name>", not "../..").
 */
export function relativePath(fromDir: string, to: string): string {
  const a = split(fromDir);
  const b = split(to);
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.slice(i).map(() => '..');
  const rel = [...up, ...b.slice(i)].join('/');
  return rel === '' ? '.' : rel;
}
