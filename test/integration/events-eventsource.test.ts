import { expect } from 'chai';
import { EventSource, type ErrorEvent } from 'eventsource';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { waitFor } from '../helpers/processes.js';

/*
 * GET /v1/events as a reader that is not ours understands it: the
 * `eventsource` package, the WHATWG EventSource for Node, parses the stream
 * and reconnects by the standard's rules. Its fetch is wrapped only to add
 * the Authorization header and to record the requests it makes. What it
 * dispatches (types, data, ids, origin), when it reconnects and what it sends
 * then, and what it does with a refusal are the judge.
 */

interface Seen {
  type: string;
  data: string;
  lastEventId: string;
  origin: string;
  at: number;
}

interface Client {
  source: EventSource;
  seen: Seen[];
  /** Events dispatched to onmessage (unnamed ones): the stream names every event, so none. */
  unnamed: number;
  errors: Array<{ at: number; code: number | undefined; readyState: number }>;
  opens: number[];
  /** Each request the client made: when, and the headers it sent. */
  requests: Array<{ at: number; headers: Record<string, string> }>;
}

const RETRY_MS = 300;
const PER_CALLER = 2;

describe('GET /v1/events read by the eventsource package', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let A: string;
  const clients: Client[] = [];

  const connect = (authorization?: string): Client => {
    const c: Client = {
      source: undefined as unknown as EventSource,
      seen: [],
      unnamed: 0,
      errors: [],
      opens: [],
      requests: [],
    };
    c.source = new EventSource(`${s.url}/v1/events`, {
      fetch: (url, init) => {
        c.requests.push({ at: Date.now(), headers: { ...init.headers } });
        return fetch(url, {
          ...init,
          headers: { ...init.headers, ...(authorization ? { Authorization: authorization } : {}) },
        });
      },
    });
    for (const type of ['cluster', 'removed', 'synced'])
      c.source.addEventListener(type, (e: MessageEvent) =>
        c.seen.push({
          type: e.type,
          data: String(e.data),
          lastEventId: e.lastEventId,
          origin: e.origin,
          at: Date.now(),
        }),
      );
    c.source.onmessage = () => c.unnamed++;
    c.source.addEventListener('open', () => c.opens.push(Date.now()));
    c.source.addEventListener('error', (e: ErrorEvent) =>
      c.errors.push({ at: Date.now(), code: e.code, readyState: c.source.readyState }),
    );
    clients.push(c);
    return c;
  };
  const next = async (c: Client, pred: (e: Seen) => boolean, from = 0): Promise<Seen> =>
    (await waitFor(() => c.seen.slice(from).find(pred), 20_000, undefined, 'an event'))!;
  const json = <T>(e: Seen) => JSON.parse(e.data) as T;

  before(async () => {
    s = await startApiStack({
      config: { http: { maxEventStreamsPerCaller: PER_CALLER } },
      eventStream: { retryMs: RETRY_MS, heartbeatMs: 100 },
    });
    A = await s.createCluster('Es_A');
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.source.close();
    await waitFor(() => s.deps.events!.size === 0, 5000, undefined, 'streams closed on the server');
  });
  after(async () => {
    await s?.stop();
  });

  it('dispatches the snapshot as named cluster events and then synced, with the JSON GET /v1/cluster gives', async () => {
    const c = connect(s.admin);
    const synced = await next(c, (e) => e.type === 'synced');
    expect(c.source.readyState).to.equal(EventSource.OPEN);
    expect(c.opens).to.have.length(1);
    const list = (await (await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } })).json()) as Array<
      Record<string, unknown>
    >;
    const snapshot = c.seen.slice(0, c.seen.indexOf(synced));
    expect(snapshot.map((e) => e.type)).to.deep.equal(list.map(() => 'cluster'));
    expect(json(synced)).to.deep.equal({ clusters: list.length });
    const a = json<Record<string, unknown>>(snapshot.find((e) => json<{ uuid: string }>(e).uuid === A)!);
    for (const [k, v] of Object.entries(list.find((x) => x.uuid === A)!)) expect(a[k], k).to.deep.equal(v);
    for (const e of c.seen) {
      // No ids: nothing to resume, as the stream documents.
      expect(e.lastEventId).to.equal('');
      expect(e.origin).to.equal(new URL(s.url).origin);
    }
    // Heartbeats are comments: they reach no listener, not even onmessage.
    await new Promise((r) => setTimeout(r, 350));
    expect(c.unnamed).to.equal(0);
    expect(c.seen.at(-1)).to.equal(synced);
  });

  it('dispatches a change live and removed when a cluster goes', async () => {
    const B = await s.createCluster('Es_B');
    const c = connect(s.admin);
    await next(c, (e) => e.type === 'synced');
    let from = c.seen.length;
    await s.m.status.update(B, { bootstrap: { fetches: 3 } });
    const changed = await next(c, (e) => e.type === 'cluster' && json<{ uuid: string }>(e).uuid === B, from);
    expect(json<{ bootstrap: { fetches: number } }>(changed).bootstrap.fetches).to.equal(3);
    from = c.seen.length;
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${B}`, {
      method: 'DELETE',
      headers: { Authorization: s.admin },
    });
    expect(r.status).to.be.oneOf([200, 204]);
    const removed = await next(c, (e) => e.type === 'removed', from);
    expect(json(removed)).to.deep.equal({ uuid: B });
  });

  it('reconnects after the retry the stream set, sends no Last-Event-ID, and gets the snapshot again', async () => {
    const c = connect(s.admin);
    await next(c, (e) => e.type === 'synced');
    const from = c.seen.length;
    // The server ends every stream (as when it stops): the client waits `retry` and comes back.
    s.deps.events!.close();
    await waitFor(() => c.opens.length === 2, 10_000, undefined, 'the client reconnected');
    const dropped = c.errors[0];
    expect(dropped.readyState, 'reconnecting, not closed').to.equal(EventSource.CONNECTING);
    expect(c.requests).to.have.length(2);
    const waited = c.requests[1].at - dropped.at;
    expect(waited)
      .to.be.at.least(RETRY_MS - 20)
      .and.below(RETRY_MS + 2000);
    expect(Object.keys(c.requests[1].headers).map((h) => h.toLowerCase())).to.not.include('last-event-id');
    expect(c.requests[1].headers.Accept).to.equal('text/event-stream');
    const again = await next(c, (e) => e.type === 'synced', from);
    expect(c.seen.slice(from, c.seen.indexOf(again)).some((e) => json<{ uuid: string }>(e).uuid === A)).to.equal(true);
  });

  it('gives up on a refusal without reconnecting: 401 without a credential, 429 over its share', async () => {
    const anon = connect();
    await waitFor(() => anon.errors.length > 0, 5000, undefined, 'an error');
    expect(anon.errors[0]).to.include({ code: 401, readyState: EventSource.CLOSED });

    const mine = [connect(s.admin), connect(s.admin)];
    for (const c of mine) await next(c, (e) => e.type === 'synced');
    const over = connect(s.admin);
    await waitFor(() => over.errors.length > 0, 5000, undefined, 'an error');
    expect(over.errors[0]).to.include({ code: 429, readyState: EventSource.CLOSED });

    // Well past the retry: neither asked again.
    await new Promise((r) => setTimeout(r, RETRY_MS * 3));
    expect(anon.requests).to.have.length(1);
    expect(over.requests).to.have.length(1);
    expect(anon.seen).to.deep.equal([]);
  });
});
