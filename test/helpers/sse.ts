import { waitFor } from './processes.js';

export interface SseEvent {
  event: string;
  data: string;
  /** When it arrived (ms). */
  at: number;
}

export interface SseStream {
  status: number;
  contentType: string | null;
  headers: Headers;
  events: SseEvent[];
  /** Comment lines (heartbeats) seen. */
  comments: number;
  /** The first event from index `from` on that `pred` accepts, waiting up to `ms`. */
  next(pred: (e: SseEvent) => boolean, ms?: number, from?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/**
 * An event-stream client over fetch, parsing as the HTML standard's
 * EventSource does (fields `event` and `data`, comments, CR/LF/CRLF line
 * ends, one space after the colon dropped), with an Authorization header,
 * which EventSource itself cannot send.
 */
export async function openEvents(url: string, authorization?: string): Promise<SseStream & { body?: string }> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { Accept: 'text/event-stream', ...(authorization ? { Authorization: authorization } : {}) },
    signal: abort.signal,
  });
  const out = {
    status: res.status,
    contentType: res.headers.get('content-type'),
    headers: res.headers,
    events: [] as SseEvent[],
    comments: 0,
    close: () => abort.abort(),
    next: async (pred: (e: SseEvent) => boolean, ms = 20_000, from = 0) =>
      (await waitFor(() => out.events.slice(from).find(pred), ms, undefined, 'an event'))!,
    ended: Promise.resolve(),
  };
  if (!res.ok) return { ...out, body: await res.text() };
  let buf = '';
  let type = '';
  let data: string[] = [];
  const line = (l: string) => {
    if (l === '') {
      if (data.length) out.events.push({ event: type || 'message', data: data.join('\n'), at: Date.now() });
      type = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) {
      out.comments++;
      return;
    }
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    const value = i < 0 ? '' : l.slice(i + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  };
  out.ended = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        for (let m = /\r\n|\r|\n/.exec(buf); m; m = /\r\n|\r|\n/.exec(buf)) {
          line(buf.slice(0, m.index));
          buf = buf.slice(m.index + m[0].length);
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return out;
}

/** The JSON of an event. */
export const json = <T = any>(e: SseEvent): T => JSON.parse(e.data) as T;
