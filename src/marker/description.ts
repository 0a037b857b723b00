/**
 * A container's description: the name and metadata an orchestrator gives
 * with a set (`contid set --name --meta`, the OCI hook). It travels in the
 * set marker, so the labeller writes it on the set's CONTAINER_OP record and
 * a replay, with no daemon memory, finds it there. Its bounds keep the
 * marker within a user message (the kernel takes at most 8,560 bytes of
 * text; the rest of a set marker needs under 1,500). See docs/markers.md.
 */

/** Longest name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 256;
/** Most metadata entries. */
export const MAX_META_ENTRIES = 32;
/** Longest metadata value, in UTF-8 bytes. */
export const MAX_META_VALUE_BYTES = 1024;
/** Most bytes of all metadata keys and values together. */
export const MAX_META_BYTES = 2048;

/** A metadata key: 1–64 of `[A-Za-z0-9._/-]`, safe as a field name in any record. */
const META_KEY = /^[A-Za-z0-9._/-]{1,64}$/;
/** C0 controls and DEL: text that holds one could break a line of a reader that decodes it. */
const CONTROL = /[\x00-\x1f\x7f]/;

/** True for a metadata key. */
export function isMetaKey(key: string): boolean {
  return META_KEY.test(key);
}

/** Why `name` cannot name a container, or null when it can: 1–256 bytes, no control character. */
export function nameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'the name is empty';
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes, more than ${MAX_NAME_BYTES}`;
  if (CONTROL.test(name)) return 'the name has a control character';
  return null;
}

/**
 * Why `meta` cannot describe a container, or null when it can: at most 32
 * entries, keys of {@link isMetaKey}, values of at most 1,024 bytes without
 * control characters, 2,048 bytes of keys and values together.
 */
export function metaProblem(meta: Readonly<Record<string, string>>): string | null {
  const entries = Object.entries(meta);
  if (entries.length > MAX_META_ENTRIES)
    return `the metadata has ${entries.length} entries, more than ${MAX_META_ENTRIES}`;
  let total = 0;
  for (const [key, value] of entries) {
    if (!META_KEY.test(key)) return `metadata key "${key.slice(0, 64)}" is not 1-64 of [A-Za-z0-9._/-]`;
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_META_VALUE_BYTES)
      return `metadata value of "${key}" is ${bytes} bytes, more than ${MAX_META_VALUE_BYTES}`;
    if (CONTROL.test(value)) return `metadata value of "${key}" has a control character`;
    total += Buffer.byteLength(key, 'utf8') + bytes;
  }
  if (total > MAX_META_BYTES)
    return `the metadata keys and values are ${total} bytes together, more than ${MAX_META_BYTES}`;
  return null;
}

/**
 * The metadata as the set marker carries it (hex-encoded there): one
 * `KEY=VALUE` line per entry, in the order given, joined by `\n`. Values
 * have no control character, so neither `\n` nor the key's `=` is ambiguous.
 */
export function metaText(meta: Readonly<Record<string, string>>): string {
  return Object.entries(meta)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
}

/** Reads {@link metaText} back; null when it is not one, or breaks a bound. */
export function parseMetaText(text: string): Record<string, string> | null {
  const entries: [string, string][] = [];
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) return null;
    const key = line.slice(0, eq);
    if (keys.has(key)) return null;
    keys.add(key);
    entries.push([key, line.slice(eq + 1)]);
  }
  // fromEntries makes own properties, `__proto__` (a valid key) included.
  const meta = Object.fromEntries(entries);
  return metaProblem(meta) === null ? meta : null;
}
