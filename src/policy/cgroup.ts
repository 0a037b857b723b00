/**
 * Container membership by cgroup, for adoption (docs/design.md, "Processes that
 * enter a container from outside"): which labelled container, if any, a
 * process's `/proc/PID/cgroup` places it in. Pure: the daemon reads the
 * files and gives their text.
 *
 * A container is known by one **anchor**: a hierarchy of its init's cgroup
 * file and the path there, chosen where the init's path differs from every
 * host reference (pid 1's and the daemon's own cgroup). The unified
 * hierarchy (`0::`) is preferred, then `name=systemd`, then `pids`, then
 * the first line that differs. A container whose init shares every path
 * with the host (runtimes run without a cgroup manager) has no anchor and
 * cannot be adopted into. A process belongs to the container whose anchor
 * path equals its own path on that hierarchy or is an ancestor of it
 * (nested cgroups inside the container); the deepest anchor wins, and an
 * anchor claimed by two live IDs matches nothing until one of them drops.
 */

/** One line of `/proc/PID/cgroup`: `hierarchy-id:controllers:path`. */
export interface CgroupLine {
  /** `id:controllers`, the line's hierarchy (`0:` for the unified one). */
  readonly hierarchy: string;
  readonly path: string;
}

/** Parses a cgroup file; lines that are not `id:controllers:/path` are skipped. */
export function parseCgroupFile(text: string): CgroupLine[] {
  const lines: CgroupLine[] = [];
  for (const raw of text.split('\n')) {
    const first = raw.indexOf(':');
    const second = first < 0 ? -1 : raw.indexOf(':', first + 1);
    if (second < 0) continue;
    const path = raw.slice(second + 1);
    if (!path.startsWith('/')) continue;
    lines.push({ hierarchy: raw.slice(0, second), path });
  }
  return lines;
}

/** The hierarchy/path pair that identifies a container's cgroup. */
export interface CgroupAnchor {
  readonly hierarchy: string;
  readonly path: string;
}

function rank(hierarchy: string): number {
  const controllers = hierarchy.slice(hierarchy.indexOf(':') + 1);
  if (hierarchy.startsWith('0:') && controllers === '') return 0;
  const list = controllers.split(',');
  if (list.includes('name=systemd')) return 1;
  if (list.includes('pids')) return 2;
  return 3;
}

/**
 * The anchor of a container whose init has cgroup file `container`, or
 * null when every path equals a host reference's (or is the root).
 */
export function chooseAnchor(container: string, hostRefs: readonly string[]): CgroupAnchor | null {
  const hosts = hostRefs.map((t) => new Map(parseCgroupFile(t).map((l) => [l.hierarchy, l.path])));
  let best: CgroupAnchor | null = null;
  let bestRank = Infinity;
  for (const line of parseCgroupFile(container)) {
    if (line.path === '/') continue;
    if (hosts.some((h) => h.get(line.hierarchy) === line.path)) continue;
    const r = rank(line.hierarchy);
    if (r < bestRank) {
      best = line;
      bestRank = r;
    }
  }
  return best;
}

/** Outcome of {@link CgroupIndex.register}. */
export type RegisterResult =
  | { readonly kind: 'registered'; readonly anchor: CgroupAnchor }
  | { readonly kind: 'known'; readonly anchor: CgroupAnchor }
  | { readonly kind: 'host' }
  | { readonly kind: 'ambiguous'; readonly anchor: CgroupAnchor; readonly other: string }
  /** A nested container whose cgroup is not strictly below its parent's: not registered. */
  | { readonly kind: 'not-below'; readonly anchor: CgroupAnchor; readonly parent: string };

function anchorKey(a: CgroupAnchor): string {
  return `${a.hierarchy}:${a.path}`;
}

/** Anchors of labelled containers, and the lookup from a process's cgroup file. */
export class CgroupIndex {
  /** anchor key → the IDs registered there; it matches only while there is one. */
  readonly #claims = new Map<string, Set<string>>();
  readonly #anchors = new Map<string, CgroupAnchor>();
  /** contid → the anchor key it is registered at. */
  readonly #byContid = new Map<string, string>();
  readonly #hostRefs: readonly string[];
  /** Anchors with one claimant: read for every event while adoption is on, so kept, not counted. */
  #matchable = 0;

  /** `hostRefs`: cgroup files of host processes (pid 1, the daemon) that containers must differ from. */
  constructor(hostRefs: readonly string[]) {
    this.#hostRefs = hostRefs;
  }

  /** Containers (by anchor) that can be matched. */
  get size(): number {
    return this.#matchable;
  }

  /**
   * Records that `contid` lives in the cgroup of a process whose cgroup file
   * is `text`. A nested container (`parent`, the contid of the container it
   * was created in) is registered only strictly below its parent's anchor:
   * a tenant labelling a process left in its own cgroup must not make its
   * container ambiguous (unadoptable), nor claim the parent's processes.
   */
  register(contid: string, text: string, parent: string | null = null): RegisterResult {
    const anchor = chooseAnchor(text, this.#hostRefs);
    if (anchor === null) return { kind: 'host' };
    if (parent !== null) {
      const above = this.#anchors.get(this.#byContid.get(parent) ?? '');
      if (
        above === undefined ||
        above.hierarchy !== anchor.hierarchy ||
        !anchor.path.startsWith(`${above.path}/`)
      ) {
        return { kind: 'not-below', anchor, parent };
      }
    }
    const key = anchorKey(anchor);
    this.#byContid.set(contid, key);
    const claims = this.#claims.get(key);
    if (claims === undefined) {
      this.#claims.set(key, new Set([contid]));
      this.#anchors.set(key, anchor);
      this.#matchable++;
      return { kind: 'registered', anchor };
    }
    if (claims.has(contid) && claims.size === 1) return { kind: 'known', anchor };
    // Two IDs in one cgroup: attribution by cgroup would be a guess.
    if (claims.size === 1 && !claims.has(contid)) this.#matchable--;
    claims.add(contid);
    const other = [...claims].filter((c) => c !== contid).join(', ');
    return { kind: 'ambiguous', anchor, other };
  }

  /** Forgets `contid` (it was dropped) wherever it was registered; returns at how many anchors. */
  unregister(contid: string): number {
    this.#byContid.delete(contid);
    let n = 0;
    for (const [key, claims] of this.#claims) {
      if (!claims.delete(contid)) continue;
      n++;
      if (claims.size === 0) {
        this.#claims.delete(key);
        this.#anchors.delete(key);
        this.#matchable--;
      } else if (claims.size === 1) {
        this.#matchable++; // no longer ambiguous
      }
    }
    return n;
  }

  /** The contid whose anchor holds a process with cgroup file `text`, or null. */
  match(text: string): string | null {
    if (this.#matchable === 0) return null;
    const lines = parseCgroupFile(text);
    let best: string | null = null;
    let depth = -1;
    for (const [key, anchor] of this.#anchors) {
      const line = lines.find((l) => l.hierarchy === anchor.hierarchy);
      if (line === undefined) continue;
      if (line.path !== anchor.path && !line.path.startsWith(`${anchor.path}/`)) continue;
      if (anchor.path.length <= depth) continue;
      depth = anchor.path.length;
      const claims = this.#claims.get(key);
      best = claims?.size === 1 ? (claims.values().next().value ?? null) : null;
    }
    return best;
  }
}
