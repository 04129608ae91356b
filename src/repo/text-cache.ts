import { SizedLru } from '../lib/lru.js';

/**
 * Decoded blob texts by object id, bounded in characters. An id names its
 * content for ever, so entries never go stale.
 */
export class TextCache extends SizedLru<string, string> {
  constructor(maxChars: number) {
    super(maxChars, (_oid, text) => text.length);
  }
}
