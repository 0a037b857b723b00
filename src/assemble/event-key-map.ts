/**
 * A map from event keys (a serial, or the full node/time/serial string) to
 * values, for the assembler's open and recently closed events. Keys compare
 * as a Map's do.
 *
 * Why not a Map: the assembler adds and deletes an entry for nearly every
 * event while holding only one or two open at a time, and V8 reallocates a
 * Map's table as it shrinks and refills (and, for the recent events, as
 * deleted entries pile up). Number keys here live in an open-addressing
 * table (linear probing, deletion by backward shift) that allocates only
 * when it grows; the rare string keys (and any number that is not an
 * integer, such as NaN, which `===` would never find) use a Map. The
 * process table keeps its pid map in one too, for the same churn.
 */
export class EventKeyMap<V> {
  #keys = new Float64Array(INITIAL);
  /** undefined marks a free slot. */
  #values: (V | undefined)[] = new Array<V | undefined>(INITIAL).fill(undefined);
  #mask = INITIAL - 1;
  #shift = 32 - Math.log2(INITIAL);
  #count = 0;
  readonly #others = new Map<number | string, V>();

  get size(): number {
    return this.#count + this.#others.size;
  }

  get(key: number | string): V | undefined {
    if (!inTable(key)) return this.#others.get(key);
    const i = this.#slotOf(key as number);
    return i < 0 ? undefined : this.#values[i];
  }

  has(key: number | string): boolean {
    return inTable(key) ? this.#slotOf(key as number) >= 0 : this.#others.has(key);
  }

  set(key: number | string, value: V): void {
    if (!inTable(key)) {
      this.#others.set(key, value);
      return;
    }
    this.#setNumber(key as number, value);
  }

  #setNumber(key: number, value: V): void {
    const values = this.#values;
    const keys = this.#keys;
    for (let i = home(key, this.#shift); ; i = (i + 1) & this.#mask) {
      if (values[i] === undefined) {
        keys[i] = key;
        values[i] = value;
        if (++this.#count * 2 > values.length) this.#resize(values.length * 2);
        return;
      }
      if (keys[i] === key) {
        values[i] = value;
        return;
      }
    }
  }

  delete(key: number | string): boolean {
    if (!inTable(key)) return this.#others.delete(key);
    let i = this.#slotOf(key as number);
    if (i < 0) return false;
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    // Backward shift: move later entries of the probe run into the hole
    // when their home slot does not lie between the hole and them, so
    // that every lookup's run stays unbroken without tombstones.
    for (let j = (i + 1) & mask; values[j] !== undefined; j = (j + 1) & mask) {
      const h = home(keys[j]!, this.#shift);
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (stays) continue;
      keys[i] = keys[j]!;
      values[i] = values[j];
      i = j;
    }
    values[i] = undefined;
    this.#count--;
    return true;
  }

  #slotOf(key: number): number {
    const values = this.#values;
    const keys = this.#keys;
    for (let i = home(key, this.#shift); values[i] !== undefined; i = (i + 1) & this.#mask) {
      if (keys[i] === key) return i;
    }
    return -1;
  }

  #resize(capacity: number): void {
    const keys = this.#keys;
    const values = this.#values;
    this.#keys = new Float64Array(capacity);
    this.#values = new Array<V | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
    this.#shift = 32 - Math.log2(capacity);
    this.#count = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) this.#setNumber(keys[i]!, v);
    }
  }
}

const INITIAL = 16;

/** Whether the key lives in the table rather than the Map: an integer. */
function inTable(key: number | string): boolean {
  return typeof key === 'number' && Number.isInteger(key);
}

/**
 * The home slot of a number key, from the top `32 - shift` bits of a
 * multiplicative (Fibonacci) hash of its low and high words.
 */
function home(key: number, shift: number): number {
  return Math.imul((key | 0) ^ ((key / 0x100000000) | 0), 0x9e3779b1) >>> shift;
}
