/**
 * Audit container IDs: the u64 value, the container object with its owner
 * and nesting parent, and the kernel series' rendering of chains.
 */

/** 2^64 − 1: the unset contid. Records print it as `-1`; it can never be written. */
export const CONTID_UNSET = 18446744073709551615n;

/** The unset value as records print it. */
export const UNSET_TEXT = '-1';

const DECIMAL = /^[0-9]{1,20}$/;

/**
 * Parses a contid written in decimal (the only form the kernel series
 * accepted, through `kstrtou64(…, 10)`), or returns null. The unset value
 * parses: rejecting it is a policy rule (EINVAL), not a syntax error.
 */
export function parseContid(text: string): bigint | null {
  if (!DECIMAL.test(text)) return null;
  const value = BigInt(text);
  return value > CONTID_UNSET ? null : value;
}

/** Renders a requested value as CONTAINER_OP's `contid=`: `-1` for unset, `?` when not a u64. */
export function renderRequested(text: string): string {
  const value = parseContid(text);
  if (value === null) return '?';
  return value === CONTID_UNSET ? UNSET_TEXT : value.toString();
}

/**
 * Who owns a live ID: the identity of the orchestrator that first set it.
 * The container the orchestrator itself runs in is part of the identity, so
 * the same runtime binary running nested inside a container is a different
 * owner from the host's.
 *
 * A privileged orchestrator may instead name the owner (`oci:<container
 * id>`, as the OCI hook does): every hook run is the same uid running the
 * same executable, so uid and exe cannot tell one tenant's container from
 * another's. A named owner is the same owner only as the same name.
 */
export interface Owner {
  readonly uid: number;
  readonly exe: string;
  readonly container: Container | null;
  /** The name a privileged caller gave, or null for the uid and exe. */
  readonly name: string | null;
}

/** A container: one incarnation of an ID (after a drop, the ID may come back as a new object). */
export interface Container {
  readonly id: bigint;
  /** The ID in decimal. */
  readonly text: string;
  /** The container this one was created from (nesting), or null. */
  readonly parent: Container | null;
  readonly owner: Owner;
  /** The IDs leaf to root, decimal. */
  readonly chain: readonly string[];
  /** `4,^2,^1`, as CONTAINER_ID prints it. */
  readonly rendered: string;
  /** Holders: live processes, open births, and nested containers. */
  refs: number;
  live: boolean;
  /**
   * The live IDs nested in this one, by decimal ID: IDs are unique among
   * the children of one parent (the top level is the host's), so a tenant
   * minting nested IDs cannot take an ID from the host or another tenant.
   */
  nested: Map<string, Container> | null;
}

/** How records print the contid of an event whose container cannot be known. */
export const UNKNOWN_TEXT = 'unknown';

/**
 * The label of a process whose container cannot be known: its parent was
 * never seen and nothing more will be learnt of it. Never written as host
 * (no CONTAINER_ID record means proven host). Not an ID: it has no chain,
 * holds nothing and is never live; policy treats it as labelled (a set is
 * refused with EEXIST), adoption may still place it.
 */
export const UNKNOWN: Container = {
  id: -1n,
  text: UNKNOWN_TEXT,
  parent: null,
  owner: Object.freeze({ uid: -1, exe: '', container: null, name: null }),
  chain: Object.freeze([]),
  rendered: UNKNOWN_TEXT,
  refs: 0,
  live: false,
  nested: null,
};

/** Makes a container object, computing its chain once. */
export function makeContainer(id: bigint, parent: Container | null, owner: Owner): Container {
  const text = id.toString();
  const chain = parent === null ? [text] : [text, ...parent.chain];
  return {
    id,
    text,
    parent,
    owner,
    chain,
    rendered: renderChain(chain),
    refs: 0,
    live: true,
    nested: null,
  };
}

/**
 * Parses a chain as markers carry it (`5+42+1`, leaf to root, `+` between
 * levels; a single ID is a chain of one), or returns null.
 */
export function parseChainToken(text: string): bigint[] | null {
  const parts = text.split('+');
  const out: bigint[] = [];
  for (const p of parts) {
    const v = parseContid(p);
    if (v === null || v === CONTID_UNSET) return null;
    out.push(v);
  }
  return out;
}

/** A chain as a marker token: `5+42+1`. */
export function chainToken(chain: readonly string[]): string {
  return chain.join('+');
}

/** Renders a leaf-to-root chain: each element that has a parent is followed by `,^`. */
export function renderChain(chain: readonly string[]): string {
  return chain.join(',^');
}

/** True when two owners are the same orchestrator identity. */
export function sameOwner(a: Owner, b: Owner): boolean {
  if (a.container !== b.container) return false;
  if (a.name !== null || b.name !== null) return a.name === b.name;
  return a.uid === b.uid && a.exe === b.exe;
}
