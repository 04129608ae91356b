// Reads a text/event-stream from fetch(): EventSource cannot send an
// Authorization header, and a token in the URL would end up in logs and
// history, so the page reads the stream itself.

/**
 * Splits event-stream text into events. Feed it chunks; it calls
 * onEvent(type, data) for each complete event and keeps the rest.
 */
export function sseParser(onEvent) {
  let buf = '';
  let type = '';
  let data = [];
  return (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length) onEvent(type || 'message', data.join('\n'));
        type = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
      }
    }
  };
}

/** An HTTP answer that is not the stream. */
export class StreamError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * Opens GET /v1/events with the token and calls onEvent for each event
 * until the stream ends (resolves) or fails (rejects with a StreamError for
 * an HTTP error). `signal` aborts it.
 */
export async function readEvents(token, onEvent, signal) {
  const res = await fetch('/v1/events', {
    headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
    credentials: 'omit',
    cache: 'no-store',
    signal,
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new StreamError(res.status, body.message || `the event stream answered ${res.status}`);
  }
  const parse = sseParser(onEvent);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    parse(value);
  }
}
