/**
 * The interpreted text view (`contid replay --interpret`), for people who
 * read `ausearch -i`: each event after a `----` line, its time as a date,
 * and numbers given names (arch, syscall, errno, uids and gids, unset ids,
 * `res=`), hex-encoded strings decoded, control characters escaped as
 * `\ooo` so that no value can start a line of its own.
 *
 * It differs from ausearch -i in two ways, on purpose: records stay in the
 * order the kernel wrote them (ausearch prints them last first), and
 * numeric ids are named only from the log's enriched part or, on request,
 * this machine's user database (`--resolve-ids`): otherwise they stay
 * numbers, so that the same log reads the same on every machine.
 */
import type { AuditEvent } from '../assemble/event.js';
import { archName } from '../interpret/arch.js';
import { interpretExit } from '../interpret/errno.js';
import { isHexEncoded } from '../interpret/hex.js';
import { interpretId } from '../interpret/ids.js';
import { syscallName } from '../interpret/syscalls.js';
import { splitFields } from '../parse/fields.js';
import type { AuditRecord } from '../parse/record.js';
import type { ByteSink } from './byte-sink.js';
import type { IdNames } from './interpretation.js';
import { FieldKind, fieldKind, forEachEnriched } from './interpretation.js';
import type { ExtraRecord } from './text.js';
import { RecordType } from '../interpret/record-types-generated.js';

const SYSCALL = RecordType.SYSCALL;
const EXECVE = RecordType.EXECVE;
const PROCTITLE = RecordType.PROCTITLE;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function octal(c: number): string {
  return `\\${c.toString(8).padStart(3, '0')}`;
}

/** Text with control characters (and DEL) as `\ooo`, as ausearch's tty escaping writes them. */
export function escapeControls(text: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      out += text.slice(from, i) + octal(c);
      from = i + 1;
    }
  }
  return from === 0 ? text : out + text.slice(from);
}

/** Decoded bytes as text: UTF-8 when they are, every byte above 0x7f as `\ooo` when not. */
function bytesText(bytes: Buffer): string {
  try {
    return escapeControls(utf8.decode(bytes));
  } catch {
    let out = '';
    for (const b of bytes) out += b < 0x20 || b >= 0x7f ? octal(b) : String.fromCharCode(b);
    return out;
  }
}

/** A raw untrusted-string value, decoded: `"x"` is x, `2F62696E` is /bin. */
function stringValue(raw: string): string {
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return escapeControls(raw.slice(1, -1));
  return isHexEncoded(raw) ? bytesText(Buffer.from(raw, 'hex')) : escapeControls(raw);
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * `MM/DD/YY HH:MM:SS.mmm` in the local time zone, as ausearch -i prints a
 * stamp in the C locale; the milliseconds are the log's own digits.
 */
export function formatStamp(timeMs: number, time: string): string {
  const d = new Date(timeMs);
  const dot = time.indexOf('.');
  const ms = dot < 0 ? '000' : time.slice(dot + 1);
  return (
    `${two(d.getMonth() + 1)}/${two(d.getDate())}/${two(d.getFullYear() % 100)} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms}`
  );
}

/** Writes events as interpreted text into a ByteSink. */
export class InterpretedEventWriter {
  readonly #sink: ByteSink;
  readonly #ids: IdNames | null;

  constructor(sink: ByteSink, options: { readonly ids?: IdNames | null } = {}) {
    this.#sink = sink;
    this.#ids = options.ids ?? null;
  }

  /** Writes an event (see TextEventWriter.write for `extras` and `links`). */
  write(event: AuditEvent, extras: readonly ExtraRecord[] = [], links: readonly number[] = []): void {
    const stamp = formatStamp(event.timeMs, event.time);
    let text = '----\n';
    const recs = event.records;
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i]!;
      text += this.#line(r.node, r.typeName, stamp, r.serial, this.#fields(r));
      if (links.includes(i)) text += ` record=${i + 1}`;
      text += '\n';
    }
    for (const x of extras) {
      const names: string[] = [];
      const values: string[] = [];
      splitFields(x.body, names, values);
      // A set's metadata values are untrusted strings, as its name is.
      const fields = names
        .map((n, i) =>
          n.startsWith('meta.')
            ? `${n}=${stringValue(values[i]!)}`
            : `${n}=${this.#value(0, n, values[i]!, null, null)}`,
        )
        .join(' ');
      text += this.#line(event.node, x.typeName, stamp, event.serial, fields) + '\n';
    }
    this.#sink.utf8(text);
  }

  #line(node: string | null, type: string, stamp: string, serial: number, fields: string): string {
    const head = node === null ? '' : `node=${escapeControls(node)} `;
    return `${head}type=${escapeControls(type)} msg=audit(${stamp}:${serial}) : ${fields}`;
  }

  #fields(r: AuditRecord): string {
    let enriched: Map<string, string> | null = null;
    if (r.enriched !== null) {
      enriched = new Map();
      const map = enriched;
      forEachEnriched(r.enriched, (n, v) => {
        if (!map.has(n)) map.set(n, v);
      });
    }
    const { names, values } = r;
    let arch: string | null = null;
    const parts: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const raw = values[i]!;
      if (name === 'arch') arch = raw;
      if (name === 'key' && (raw.startsWith('"') || isHexEncoded(raw))) {
        // Several keys are one hex value joined by \x01; ausearch prints a key= for each.
        const keys = raw.startsWith('"')
          ? [stringValue(raw)]
          : Buffer.from(raw, 'hex')
              .toString('latin1')
              .split('\x01')
              .map((k) => bytesText(Buffer.from(k, 'latin1')));
        for (const k of keys) parts.push(`key=${k}`);
        continue;
      }
      parts.push(`${escapeControls(name)}=${this.#value(r.type, name, raw, arch, enriched)}`);
    }
    return parts.join(' ');
  }

  /** One field's interpreted value (escaped). */
  #value(
    type: number,
    name: string,
    raw: string,
    arch: string | null,
    enriched: Map<string, string> | null,
  ): string {
    switch (fieldKind(name)) {
      case FieldKind.Arch:
        return archName(raw) ?? escapeControls(raw);
      case FieldKind.Syscall:
        if (type === SYSCALL && arch !== null) {
          const nr = Number(raw);
          return syscallName(arch, nr) ?? escapeControls(raw);
        }
        break;
      case FieldKind.Exit:
        if (type === SYSCALL) return interpretExit(raw) ?? escapeControls(raw);
        break;
      case FieldKind.Ses:
        return raw === '4294967295' ? 'unset' : escapeControls(raw);
      case FieldKind.Uid:
      case FieldKind.Gid:
        return this.#id(name, raw, enriched, fieldKind(name) === FieldKind.Gid);
      case FieldKind.Encoded:
        return stringValue(raw);
      default:
        break;
    }
    // auditd's own reading, where the log has one (an ENRICHED SOCKADDR's saddr).
    const fromLog = enriched?.get(name);
    if (fromLog !== undefined) return escapeControls(fromLog);
    if (type === SYSCALL && /^a[0-3]$/.test(name)) return `0x${escapeControls(raw)}`;
    if (type === PROCTITLE && name === 'proctitle') return this.#proctitle(raw);
    if (type === EXECVE && /^a[0-9]+(\[[0-9]+\])?$/.test(name)) return stringValue(raw);
    if (name === 'res' && (raw === '1' || raw === '0')) return raw === '1' ? 'yes' : 'no';
    if (name === 'msg' && raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'"))
      return this.#message(type, raw);
    if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return escapeControls(raw.slice(1, -1));
    return escapeControls(raw);
  }

  /**
   * A user message's `msg='…'`, its fields interpreted in place (PAM's
   * `acct="root"` is acct=root) and its other words kept, as ausearch does.
   */
  #message(type: number, raw: string): string {
    const words = raw.slice(1, -1).split(' ');
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      const eq = word.indexOf('=');
      words[i] =
        eq <= 0
          ? escapeControls(word)
          : `${escapeControls(word.slice(0, eq))}=${this.#value(type, word.slice(0, eq), word.slice(eq + 1), null, null)}`;
    }
    return `'${words.join(' ')}'`;
  }

  #id(name: string, raw: string, enriched: Map<string, string> | null, group: boolean): string {
    const unset = interpretId(raw);
    if (unset !== undefined) return unset;
    const fromLog = enriched?.get(name);
    if (fromLog !== undefined) return escapeControls(fromLog);
    const ids = this.#ids;
    if (ids === null || !/^[0-9]{1,10}$/.test(raw)) return escapeControls(raw);
    const n = Number(raw);
    return escapeControls((group ? ids.group(n) : ids.user(n)) ?? `unknown(${raw})`);
  }

  #proctitle(raw: string): string {
    if (!isHexEncoded(raw)) return stringValue(raw);
    const bytes = Buffer.from(raw, 'hex');
    const args: string[] = [];
    let start = 0;
    for (let nul = bytes.indexOf(0); nul >= 0; nul = bytes.indexOf(0, start)) {
      args.push(bytesText(bytes.subarray(start, nul)));
      start = nul + 1;
    }
    if (start < bytes.length) args.push(bytesText(bytes.subarray(start)));
    return args.join(' ');
  }
}
