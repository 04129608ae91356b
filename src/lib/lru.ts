/**
 * A map bounded by the total size of its values, least recently used first
 * out. A value bigger than a quarter of the bound is not kept: it would
 * push out everything else for one use.
 */
export class SizedLru<K, V> {
  private readonly entries = new Map<K, V>();
  private size = 0;

  constructor(
    private readonly maxSize: number,
    private readonly sizeOf: (key: K, value: V) => number,
  ) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    const size = this.sizeOf(key, value);
    if (size > this.maxSize / 4) return;
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.size -= this.sizeOf(key, old);
    }
    this.entries.set(key, value);
    this.size += size;
    for (const [k, v] of this.entries) {
      if (this.size <= this.maxSize) break;
      this.entries.delete(k);
      this.size -= this.sizeOf(k, v);
    }
  }

  get count(): number {
    return this.entries.size;
  }
}
