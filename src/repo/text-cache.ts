/**
 * Decoded blob texts by object id, least recently used first out, bounded in
 * characters. An id names its content for ever, so entries never go stale.
 */
export class TextCache {
  private readonly entries = new Map<string, string>();
  private size = 0;

  constructor(private readonly maxChars: number) {}

  get(oid: string): string | undefined {
    const text = this.entries.get(oid);
    if (text !== undefined) {
      this.entries.delete(oid);
      this.entries.set(oid, text);
    }
    return text;
  }

  set(oid: string, text: string): void {
    if (text.length > this.maxChars / 4) return;
    const old = this.entries.get(oid);
    if (old !== undefined) { this.entries.delete(oid); this.size -= old.length; }
    this.entries.set(oid, text);
    this.size += text.length;
    for (const [k, v] of this.entries) {
      if (this.size <= this.maxChars) break;
      this.entries.delete(k);
      this.size -= v.length;
    }
  }
}
