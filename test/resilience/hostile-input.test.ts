import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { basic } from '../helpers/core.js';
import { waitFor } from '../helpers/processes.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { listen } from '../../src/lib/listen.js';

/*
 * A corpus of hostile requests against every route of the HTTP API, sent
 * over raw sockets so that paths, header bytes and framing go out exactly
 * as written (fetch would normalise `..`, refuse CR/LF and fix framing).
 *
 * Every answer must come within ANSWER_MS with the status the design gives
 * (exact where it names one); every 4xx/5xx the app itself produces is JSON
 * `{error, message}`. Requests Node's HTTP parser cannot parse (bad framing,
 * control characters, bytes that are not a token, headers over 16 KiB) are
 * answered by Node itself before the app sees them: a bare
 * `400 Bad Request` / `431 Request Header Fields Too Large` with
 * `Connection: close` and no body — those cases are marked `origin: 'node'`
 * and only their status is checked. CONNECT without a listener is closed by
 * Node without an answer.
 *
 * Afterwards the cluster repo's head and the Config Store's setup status and
 * Edge cluster status entries must be as they were, and the service must
 * still answer /health and a normal request.
 */

const ANSWER_MS = 5000;
const CONCURRENCY = 16;
const SOAK = !!process.env.SOAK;

interface Answer {
  /** 0 when the connection closed without any answer. */
  status: number;
  headers: Record<string, string>;
  head: string;
  body: Buffer;
  ms: number;
  timedOut: boolean;
}

interface Case {
  id: string;
  method: string;
  /** The request-target exactly as sent. */
  path: string;
  /** Admin credential unless null (none) or another header value. */
  auth?: string | null;
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Complete raw request bytes, sent instead of building one. */
  raw?: Buffer;
  expect: number | number[];
  /** 'node': answered by Node's HTTP parser, no JSON body required; 'closed': no answer at all. */
  origin?: 'app' | 'node' | 'closed';
  /** For 405: the exact Allow header. */
  allow?: string;
  /** Message must match (app answers only). */
  message?: RegExp;
}

/** Splits a raw response into status, headers and a de-chunked body; undefined while incomplete. */
function parseResponse(buf: Buffer, isHead: boolean, closed: boolean): Omit<Answer, 'ms' | 'timedOut'> | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0)
    return closed ? { status: 0, headers: {}, head: buf.toString('latin1'), body: Buffer.alloc(0) } : undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const rest = buf.subarray(end + 4);
  // An interim answer (100 Continue) is followed by the real one.
  if (status >= 100 && status < 200)
    return (
      parseResponse(rest, isHead, closed) ?? (closed ? { status, headers, head, body: Buffer.alloc(0) } : undefined)
    );
  if (isHead || status === 204 || status === 304) return { status, headers, head, body: Buffer.alloc(0) };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return closed ? { status, headers, head, body: rest } : undefined;
    return { status, headers, head, body: rest.subarray(0, n) };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const le = rest.indexOf('\r\n', at);
      if (le < 0) return closed ? { status, headers, head, body: Buffer.concat(parts) } : undefined;
      const size = parseInt(rest.subarray(at, le).toString('latin1'), 16);
      if (!Number.isFinite(size)) return { status, headers, head, body: Buffer.concat(parts) };
      if (size === 0) return { status, headers, head, body: Buffer.concat(parts) };
      if (rest.length < le + 2 + size + 2)
        return closed ? { status, headers, head, body: Buffer.concat(parts) } : undefined;
      parts.push(rest.subarray(le + 2, le + 2 + size));
      at = le + 2 + size + 2;
    }
  }
  return closed ? { status, headers, head, body: rest } : undefined;
}

describe('resilience: hostile input to the HTTP API', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let host: string;
  let port: number;
  let U: string; // ready cluster with a sealing certificate and one sealed secret
  let F: string; // cluster whose configuration is invalid: known, never ready
  let G: string; // well-formed UUID nobody knows
  let nobody: string; // valid credential without any ACL entry
  let tokenU: string; // valid bootstrap token for U
  let tokenG: string; // valid bootstrap token for G
  let baseline: { head: Record<string, string>; setup: number; edge: number; edgeU: string };
  /** What reached process.stderr while the stack ran (Koa's default error handler writes there). */
  const stderr: string[] = [];
  const realStderrWrite = process.stderr.write.bind(process.stderr);
  const results: Array<{ c: Case; a: Answer; problems: string[] }> = [];

  const apps = () => s.config.uuids.app;
  const snapshot = async () => ({
    head: await s.t.core.git.branches(U),
    setup: s.t.core.store.list(apps().setupStatus).length,
    edge: s.t.core.store.list(apps().edgeStatus).length,
    edgeU: JSON.stringify(s.t.core.store.get(apps().edgeStatus, U)?.json ?? null),
  });

  /** Sends raw bytes; resolves with the answer once it is complete, the socket closes or ANSWER_MS passes. */
  const send = (bytes: Buffer, isHead = false, timeoutMs = ANSWER_MS): Promise<Answer> =>
    new Promise((resolve) => {
      const t0 = Date.now();
      const sock = connect(port, host);
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (closed: boolean, timedOut = false) => {
        if (done) return;
        const p = parseResponse(buf, isHead, closed || timedOut);
        if (!p) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve({ ...p, ms: Date.now() - t0, timedOut });
      };
      const timer = setTimeout(() => finish(true, true), timeoutMs);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        finish(false);
      });
      sock.on('close', () => finish(true));
      sock.on('error', () => finish(true)); // EPIPE/ECONNRESET after the server answered early
      sock.write(bytes);
    });

  const build = (c: Case): Buffer => {
    if (c.raw) return c.raw;
    const lines = [`${c.method} ${c.path} HTTP/1.1`, `Host: ${host}:${port}`];
    if (c.auth !== null) lines.push(`Authorization: ${c.auth ?? s.admin}`);
    for (const [k, v] of c.headers ?? []) lines.push(`${k}: ${v}`);
    const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
    if (body && !(c.headers ?? []).some(([k]) => /^(content-length|transfer-encoding)$/i.test(k)))
      lines.push(`Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
  };

  const check = (c: Case, a: Answer): string[] => {
    const problems: string[] = [];
    const want = Array.isArray(c.expect) ? c.expect : [c.expect];
    const origin = c.origin ?? 'app';
    if (a.timedOut) problems.push(`no complete answer within ${ANSWER_MS} ms`);
    if (origin === 'closed') {
      if (a.status !== 0) problems.push(`expected the connection to be closed without an answer, got ${a.status}`);
      return problems;
    }
    if (!want.includes(a.status))
      problems.push(`status ${a.status}, expected ${want.join('|')}: ${a.body.toString('utf8').slice(0, 200)}`);
    if (a.status >= 500) problems.push(`server error ${a.status}`);
    if (/^(x-injected|set-cookie)\s*:/im.test(a.head))
      problems.push(`injected header in answer: ${JSON.stringify(a.head)}`);
    if (origin === 'app') {
      if (a.headers['x-content-type-options'] !== 'nosniff') problems.push('no X-Content-Type-Options: nosniff');
      if (a.status >= 400) {
        if (!/^application\/json/.test(a.headers['content-type'] ?? ''))
          problems.push(`error content type ${a.headers['content-type']}`);
        try {
          const j = JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
          if (typeof j.error !== 'string' || !j.error) problems.push('error body has no `error`');
          if (typeof j.message !== 'string' || !j.message) problems.push('error body has no `message`');
          if (c.message && typeof j.message === 'string' && !c.message.test(j.message))
            problems.push(`message ${JSON.stringify(j.message)} does not match ${c.message}`);
        } catch {
          problems.push(`error body is not JSON: ${a.body.toString('utf8').slice(0, 120)}`);
        }
      }
      if (a.status === 401 && a.headers['www-authenticate'] === undefined)
        problems.push('401 without WWW-Authenticate');
      if (a.status === 405) {
        if (c.allow !== undefined && a.headers.allow !== c.allow)
          problems.push(`Allow ${JSON.stringify(a.headers.allow)}, expected ${JSON.stringify(c.allow)}`);
        if (!a.headers.allow) problems.push('405 without Allow');
      }
    } else if ((a.status === 400 || a.status === 431) && !/close/i.test(a.headers.connection ?? '')) {
      problems.push('Node-level rejection without Connection: close');
    }
    return problems;
  };

  /** Runs cases CONCURRENCY at a time, prints one line each, and fails with every problem found. */
  const runCases = async (group: string, cases: Case[]) => {
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const a = await send(build(c), c.method === 'HEAD');
        const problems = check(c, a);
        results.push({ c, a, problems });
        const want = Array.isArray(c.expect) ? c.expect.join('|') : String(c.expect);
        const p = c.path.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '{u}');
        const shown = c.raw ? '(raw bytes)' : `${c.method} ${p.length > 48 ? `${p.slice(0, 45)}...` : p}`;
        if (problems.length || process.env.VERBOSE)
          console.log(
            `    [hostile/${group}] ${c.id}: ${shown} -> ${a.status || 'closed'} (want ${c.origin === 'closed' ? 'closed' : want}) ${a.ms}ms${problems.length ? ' FAIL' : ''}`,
          );
        if (problems.length) failures.push(`${c.id} (${shown}): ${problems.join('; ')}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, cases.length) }, worker));
    expect(
      failures,
      `${failures.length} of ${cases.length} ${group} cases failed:\n  ${failures.join('\n  ')}`,
    ).to.deep.equal([]);
  };

  const ok = 'valid-ns';
  const secret = (cluster: string, ns = ok, name = 'app-creds', key = 'password') =>
    `/v1/cluster/${cluster}/secret/${ns}/${name}/${key}`;
  /** One request line per route that takes a cluster UUID. */
  const clusterRoutes = (c: string): Array<Pick<Case, 'method' | 'path' | 'body'> & { route: string }> => [
    { route: 'status', method: 'GET', path: `/v1/cluster/${c}/status` },
    { route: 'bootstrap-url', method: 'POST', path: `/v1/cluster/${c}/bootstrap-url` },
    { route: 'bootstrap', method: 'GET', path: `/v1/cluster/${c}/bootstrap?token=${tokenU}` },
    { route: 'put-secret', method: 'PUT', path: `${secret(c)}?dryrun`, body: 'value' },
    { route: 'delete-secret', method: 'DELETE', path: `${secret(c)}?dryrun` },
    { route: 'list-secrets', method: 'GET', path: `/v1/cluster/${c}/secret` },
    { route: 'get-secret', method: 'GET', path: `/v1/cluster/${c}/secret/${ok}/app-creds` },
    { route: 'reseal', method: 'POST', path: `/v1/cluster/${c}/secret-reseal` },
  ];

  before(async () => {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderr.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stderr.write;
    testCert('rsa');
    s = await startApiStack();
    const u = new URL(s.url);
    host = u.hostname;
    port = Number(u.port);
    U = await s.createCluster('Hostile_U');
    const put = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${apps().edgeStatus}/object/${U}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: testCert('rsa').certPem }),
    });
    expect(put.status).to.be.oneOf([201, 204]);
    const sealed = await fetch(`${s.url}${secret(U)}`, {
      method: 'PUT',
      headers: { Authorization: s.admin },
      body: 'the-real-value',
    });
    expect(sealed.status, await sealed.text()).to.equal(204);

    // A cluster entry the manager refuses (invalid name): known, failed, never ready.
    F = s.t.core.objects.create({ class: s.config.uuids.class.edgeCluster, owner: Local.account.admin }).registration
      .uuid;
    const bad = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${apps().clusterConfig}/object/${F}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'not a valid name!', namespace: 'fplus-edge' }),
    });
    expect(bad.status).to.equal(201);
    await waitFor(() => s.m.status.get(F)?.phase === 'failed', 15_000, undefined, 'invalid cluster marked failed');

    G = randomUUID();
    const who = randomUUID();
    s.t.core.auth.ensurePrincipal(who);
    s.t.core.auth.setPassword('nobody', who, 'nobody-pw');
    nobody = basic('nobody', 'nobody-pw');
    tokenU = s.deps.bootstrapTokens.issue(U).token;
    tokenG = s.deps.bootstrapTokens.issue(G).token;
    await waitFor(() => s.m.status.pending === 0, 10_000, undefined, 'status writes settled');
    baseline = await snapshot();
    expect(baseline.head.main, 'the cluster repo has a main branch').to.be.a('string');
  });
  after(async () => {
    const n = results.length;
    const failed = results.filter((r) => r.problems.length).length;
    console.log(`    [hostile] corpus: ${n} requests sent, ${failed} with problems`);
    await s?.stop();
    process.stderr.write = realStderrWrite;
  });

  it('malformed cluster UUIDs: 400 on every route that takes one', async () => {
    const bad = [
      'not-a-uuid',
      '1234',
      `${U}0`,
      U.slice(0, -1),
      `%7B${U}%7D`,
      U.replace(/-/g, ''),
      '%2e%2e',
      '..',
      '%00',
      '%EF%BD%95',
      `${U}%0d%0aX-Injected:%20yes`,
      `gggggggg-${U.slice(9)}`,
      `${U.slice(0, 8)}_${U.slice(9)}`,
      '%FF%FE',
    ];
    const cases: Case[] = [];
    for (const b of bad) {
      for (const r of clusterRoutes(b))
        cases.push({
          id: `uuid ${r.route} ${JSON.stringify(b.replace(U, '{u}')).slice(0, 24)}`,
          ...r,
          expect: 400,
          message: /is not a cluster UUID/,
        });
    }
    await runCases('uuid', cases);
  });

  it('an unknown cluster: 404, and 401 for the bootstrap script with a token of another cluster', async () => {
    const cases: Case[] = clusterRoutes(G).map((r) => ({
      id: `unknown ${r.route}`,
      ...r,
      expect: r.route === 'bootstrap' ? 401 : 404,
    }));
    cases.push({
      id: 'unknown bootstrap, own token',
      method: 'GET',
      path: `/v1/cluster/${G}/bootstrap?token=${tokenG}`,
      expect: 404,
    });
    cases.push({
      id: 'unknown PUT 2 MiB',
      method: 'PUT',
      path: secret(G),
      body: Buffer.alloc(2 * 1024 * 1024, 0x41),
      expect: 413,
    });
    await runCases('unknown', cases);
  });

  it('a cluster that is not ready: 409 where the design says, nothing sealed', async () => {
    const tokenF = s.deps.bootstrapTokens.issue(F).token;
    const want: Record<string, number> = {
      status: 200,
      'bootstrap-url': 409,
      bootstrap: 409,
      'put-secret': 409,
      'delete-secret': 409,
      'list-secrets': 409,
      'get-secret': 409,
      reseal: 409,
    };
    const cases: Case[] = clusterRoutes(F).map((r) => ({
      id: `not-ready ${r.route}`,
      ...r,
      path: r.route === 'bootstrap' ? `/v1/cluster/${F}/bootstrap?token=${tokenF}` : r.path,
      expect: want[r.route]!,
    }));
    cases.push({ id: 'not-ready PUT (no dryrun)', method: 'PUT', path: secret(F), body: 'v', expect: 409 });
    await runCases('not-ready', cases);
  });

  const badNamespaces = [
    '..',
    '.',
    '%2e%2e',
    '%2E%2E',
    '..%2F..',
    'a%2Fb',
    'a%5Cb',
    '%5C',
    'App',
    'a'.repeat(64),
    'a_b',
    'a.b',
    '-a',
    'a-',
    '%0d%0aX-Injected:%20yes',
    '%C3%A9t%C3%A9',
    '%FF',
    '%00',
    'a%20b',
    '%252e%252e',
    '%E2%80%AE',
    'a%3Bb',
  ];
  const badNames = [
    '..',
    '.',
    '%2e%2e',
    'a%2Fb',
    'a%5Cb',
    'Name',
    'a'.repeat(254),
    '-x',
    'x..y',
    '.x',
    '%0d%0aSet-Cookie:%20a=b',
    '%C3%A9',
    'a_b',
    '%2F..%2F..%2Fetc',
  ];
  const badKeys = [
    '..',
    '.',
    '%2e%2e',
    'a%2Fb',
    'a%5Cb',
    'k'.repeat(254),
    'a%20b',
    'a:b',
    '%0d%0aX-Injected:%20yes',
    '%C3%A9',
    '%FF',
    'a%00',
    '%2F',
    '%2e%2e%2F%2e%2e%2Fconfig',
  ];

  it('path traversal, encoded separators, upper case, overlong and injected names: 400 on PUT', async () => {
    const cases: Case[] = [
      ...badNamespaces.map((n) => ({
        id: `PUT ns ${n.slice(0, 16)}`,
        method: 'PUT',
        path: `${secret(U, n)}?dryrun`,
        body: 'v',
        expect: 400,
        message: /invalid secret namespace/,
      })),
      ...badNames.map((n) => ({
        id: `PUT name ${n.slice(0, 16)}`,
        method: 'PUT',
        path: `${secret(U, ok, n)}?dryrun`,
        body: 'v',
        expect: 400,
        message: /invalid secret name/,
      })),
      ...badKeys.map((k) => ({
        id: `PUT key ${k.slice(0, 16)}`,
        method: 'PUT',
        path: `${secret(U, ok, 'app-creds', k)}`,
        body: 'v',
        expect: 400,
        message: /invalid secret key/,
      })),
    ];
    await runCases('put-address', cases);
  });

  it('the same addresses: 400 on DELETE and on GET of one secret', async () => {
    const cases: Case[] = [
      ...badNamespaces.map((n) => ({
        id: `DELETE ns ${n.slice(0, 16)}`,
        method: 'DELETE',
        path: secret(U, n),
        expect: 400,
        message: /invalid secret namespace/,
      })),
      ...badNames.map((n) => ({
        id: `DELETE name ${n.slice(0, 16)}`,
        method: 'DELETE',
        path: secret(U, ok, n),
        expect: 400,
        message: /invalid secret name/,
      })),
      ...badKeys.map((k) => ({
        id: `DELETE key ${k.slice(0, 16)}`,
        method: 'DELETE',
        path: secret(U, ok, 'app-creds', k),
        expect: 400,
        message: /invalid secret key/,
      })),
      ...badNamespaces.map((n) => ({
        id: `GET ns ${n.slice(0, 16)}`,
        method: 'GET',
        path: `/v1/cluster/${U}/secret/${n}/app-creds`,
        expect: 400,
        message: /invalid secret namespace/,
      })),
      ...badNames.map((n) => ({
        id: `GET name ${n.slice(0, 16)}`,
        method: 'GET',
        path: `/v1/cluster/${U}/secret/${ok}/${n}`,
        expect: 400,
        message: /invalid secret name/,
      })),
    ];
    // Raw `..` segments are not resolved by anyone: they are simply invalid names.
    cases.push({
      id: 'raw ../.. not resolved',
      method: 'GET',
      path: `/v1/cluster/${U}/secret/../../${U}/status`,
      expect: 404,
      message: /no route/,
    });
    await runCases('address', cases);
  });

  it('bogus scope: 400 before the body is sealed', async () => {
    const scopes = [
      'bogus',
      'STRICT',
      'Cluster-Wide',
      '',
      'strict%00',
      'strict&scope=cluster-wide',
      'namespace-wide%0d%0aX-Injected:%20yes',
      '%FF',
      'a'.repeat(5000),
    ];
    const cases: Case[] = scopes.map((sc) => ({
      id: `scope ${JSON.stringify(sc.slice(0, 16))}`,
      method: 'PUT',
      path: `${secret(U)}?scope=${sc}`,
      body: 'v',
      expect: 400,
      message: /scope must be/,
    }));
    cases.push({
      id: 'scope[] (not scope)',
      method: 'PUT',
      path: `${secret(U)}?dryrun&scope[]=bogus`,
      body: 'v',
      expect: 200,
    });
    await runCases('scope', cases);
  });

  it('bodies: over 1 MiB is 413 (declared, chunked, lying), invalid UTF-8 and junk are taken as opaque bytes', async () => {
    const mib = 1024 * 1024;
    const chunked = (total: number, piece = 64 * 1024) => {
      const parts: Buffer[] = [];
      for (let left = total; left > 0; left -= piece) {
        const n = Math.min(piece, left);
        parts.push(Buffer.from(`${n.toString(16)}\r\n`), Buffer.alloc(n, 0x42), Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      return Buffer.concat(parts);
    };
    const cases: Case[] = [
      { id: 'PUT 1 MiB + 1', method: 'PUT', path: secret(U), body: Buffer.alloc(mib + 1, 0x41), expect: 413 },
      {
        id: 'PUT 1 MiB + 1 dryrun',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        body: Buffer.alloc(mib + 1, 0x41),
        expect: 413,
      },
      {
        id: 'PUT 3 MiB chunked',
        method: 'PUT',
        path: secret(U),
        headers: [['Transfer-Encoding', 'chunked']],
        body: chunked(3 * mib),
        expect: 413,
      },
      {
        id: 'PUT declares 10 GB',
        method: 'PUT',
        path: secret(U),
        headers: [['Content-Length', String(10 * 1024 ** 3)]],
        body: 'tiny',
        expect: 413,
      },
      {
        id: 'PUT exactly 1 MiB dryrun',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        body: Buffer.alloc(mib, 0x43),
        expect: 200,
      },
      {
        id: 'PUT invalid UTF-8 dryrun',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        body: Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80, 0x80, 0x80]),
        expect: 200,
      },
      { id: 'PUT NUL bytes dryrun', method: 'PUT', path: `${secret(U)}?dryrun`, body: Buffer.alloc(64), expect: 200 },
      { id: 'PUT empty dryrun', method: 'PUT', path: `${secret(U)}?dryrun`, body: '', expect: [200, 400] },
      {
        id: 'PUT JSON type, broken JSON',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        headers: [['Content-Type', 'application/json']],
        body: '{"a":',
        expect: 200,
      },
      {
        id: 'PUT multipart junk',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        headers: [['Content-Type', 'multipart/form-data; boundary=x']],
        body: '--x\r\n\r\n--',
        expect: 200,
      },
      {
        id: 'PUT gzip-encoded',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        headers: [['Content-Encoding', 'gzip']],
        body: 'not gzip at all',
        expect: [200, 415],
      },
      {
        id: 'PUT Expect: 100-continue',
        method: 'PUT',
        path: `${secret(U)}?dryrun`,
        headers: [['Expect', '100-continue']],
        body: 'v',
        expect: 200,
      },
      {
        id: 'POST token, broken JSON',
        method: 'POST',
        path: '/token',
        headers: [['Content-Type', 'application/json']],
        body: '{"principal":',
        expect: 200,
      },
      {
        id: 'POST token, invalid UTF-8',
        method: 'POST',
        path: '/token',
        headers: [['Content-Type', 'application/json; charset=utf-8']],
        body: Buffer.from([0xff, 0xfe, 0x7b]),
        expect: 200,
      },
      {
        id: 'POST bootstrap-url, 2 MiB junk',
        method: 'POST',
        path: `/v1/cluster/${U}/bootstrap-url`,
        body: Buffer.alloc(2 * mib, 0x7b),
        expect: 200,
      },
      {
        id: 'POST reseal, junk body',
        method: 'POST',
        path: `/v1/cluster/${U}/secret-reseal`,
        headers: [['Content-Type', 'application/x-www-form-urlencoded']],
        body: 'a=%ZZ&&&=',
        expect: 200,
      },
      { id: 'GET list, body on GET', method: 'GET', path: `/v1/cluster/${U}/secret`, body: '{"x":1}', expect: 200 },
      {
        id: 'DELETE dryrun with body',
        method: 'DELETE',
        path: `${secret(U)}?dryrun`,
        body: Buffer.from([0xff, 0x00]),
        expect: 200,
      },
    ];
    await runCases('body', cases);
  });

  it('wrong methods: 405 with Allow', async () => {
    const m = (method: string, path: string, allow: string, auth?: string | null): Case => ({
      id: `${method} ${path.replace(/[0-9a-f-]{36}/g, '{u}')}${auth === null ? ' anon' : ''}`,
      method,
      path,
      allow,
      auth,
      expect: 405,
    });
    const cases: Case[] = [
      m('POST', '/v1/cluster', 'GET'),
      m('DELETE', '/v1/cluster', 'GET'),
      m('OPTIONS', '/v1/cluster', 'GET'),
      m('TRACE', '/v1/cluster', 'GET'),
      m('DELETE', `/v1/cluster/${U}/status`, 'GET'),
      m('GET', `/v1/cluster/${U}/bootstrap-url`, 'POST'),
      m('PUT', `/v1/cluster/${U}/bootstrap`, 'GET'),
      m('PATCH', secret(U), 'PUT, DELETE'),
      m('POST', secret(U), 'PUT, DELETE'),
      m('GET', secret(U), 'PUT, DELETE'),
      m('DELETE', `/v1/cluster/${U}/secret`, 'GET'),
      m('POST', `/v1/cluster/${U}/secret/${ok}/app-creds`, 'GET'),
      m('GET', `/v1/cluster/${U}/secret-reseal`, 'POST'),
      m('PUT', '/ping', 'GET'),
      m('GET', '/token', 'POST'),
      m('POST', '/metrics', 'GET'),
      m('DELETE', '/openapi.json', 'GET'),
      m('POST', '/health', 'GET', null),
      m('PROPFIND', '/v1/cluster', 'GET'),
      m('DELETE', '/v1/cluster/not-a-uuid/status', 'GET'),
    ];
    cases.push({ id: 'POST /v1/cluster anon', method: 'POST', path: '/v1/cluster', auth: null, expect: 401 });
    await runCases('method', cases);
  });

  it('bad Authorization headers: 401 with the challenge, never 5xx', async () => {
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const variants: Array<[string, string]> = [
      ['garbage scheme', 'Foo bar'],
      ['scheme only', 'Basic'],
      ['empty Basic', 'Basic    '],
      ['not base64', 'Basic !!!***'],
      ['no colon', `Basic ${b64('adminadmin')}`],
      ['empty user/pw', `Basic ${b64(':')}`],
      ['wrong password', `Basic ${b64('admin:wrong')}`],
      ['12 KiB Basic', `Basic ${'QUFB'.repeat(3072)}`],
      ['Bearer only', 'Bearer'],
      ['12 KiB Bearer', `Bearer ${'x'.repeat(12 * 1024)}`],
      ['fake JWT', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.'],
      ['lower-case basic, wrong pw', `basic ${b64('admin:nope')}`],
      [
        'Negotiate',
        'Negotiate YIIBmwYGKwYBBQUCoIIBjzCCAYugJDAiBgkqhkiG9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICCqKCAWEEggFd',
      ],
      ['Digest', 'Digest username="admin", realm="x", nonce="1", uri="/", response="0"'],
      ['NUL in user', `Basic ${b64('adm\0in:x')}`],
      ['unicode user', `Basic ${b64('ädmin:pässwörd')}`],
    ];
    const cases: Case[] = [];
    for (const [what, h] of variants) {
      cases.push({ id: `auth ${what} list`, method: 'GET', path: '/v1/cluster', auth: h, expect: 401 });
      cases.push({ id: `auth ${what} PUT`, method: 'PUT', path: secret(U), auth: h, body: 'v', expect: 401 });
    }
    cases.push({
      id: 'auth latin-1 bytes',
      method: 'GET',
      path: '/v1/cluster',
      auth: null,
      expect: 401,
      raw: Buffer.concat([
        Buffer.from(`GET /v1/cluster HTTP/1.1\r\nHost: x\r\nAuthorization: Basic `),
        Buffer.from([0xe9, 0xff, 0x80]),
        Buffer.from('\r\n\r\n'),
      ]),
    });
    cases.push({
      id: 'auth garbage first of two',
      method: 'GET',
      path: '/v1/cluster',
      auth: 'Foo x',
      headers: [['Authorization', s.admin]],
      expect: 401,
    });
    cases.push({
      id: 'no credentials at all',
      method: 'GET',
      path: `/v1/cluster/${U}/secret`,
      auth: null,
      expect: 401,
    });
    await runCases('authz-header', cases);
  });

  it('a principal without ACL entries: 403 on every cluster route, an empty listing', async () => {
    const cases: Case[] = clusterRoutes(U)
      .filter((r) => r.route !== 'bootstrap')
      .map((r) => ({ id: `nobody ${r.route}`, ...r, auth: nobody, expect: 403, message: /not allowed/ }));
    cases.push({ id: 'nobody list', method: 'GET', path: '/v1/cluster', auth: nobody, expect: 200 });
    cases.push({
      id: 'nobody PUT bad address',
      method: 'PUT',
      path: secret(U, '..', '..', '..'),
      auth: nobody,
      body: 'v',
      expect: 403,
    });
    await runCases('acl', cases);
  });

  it('bootstrap tokens: missing, malformed, oversized, tampered or for another cluster are 401', async () => {
    const flip = (t: string) => t.slice(0, 20) + (t[20] === 'A' ? 'B' : 'A') + t.slice(21);
    const qs = [
      '',
      '?token=',
      '?token=garbage',
      `?token=${'x'.repeat(10_000)}`,
      '?token=a&token=b',
      '?token=%00%FF',
      `?token=${tokenG}`,
      `?token=${flip(tokenU)}`,
      `?token=${tokenU}x`,
      `?token=${tokenU.slice(0, -1)}`,
      `?token=${encodeURIComponent(`${tokenU}\r\nX-Injected: yes`)}`,
      `?TOKEN=${tokenU}`,
    ];
    const cases: Case[] = qs.map((q) => ({
      id: `bootstrap ${JSON.stringify(q.slice(0, 24))}`,
      method: 'GET',
      path: `/v1/cluster/${U}/bootstrap${q}`,
      auth: null,
      expect: 401,
      message: /bootstrap token/,
    }));
    cases.push({
      id: 'bootstrap with garbage Authorization',
      method: 'GET',
      path: `/v1/cluster/${U}/bootstrap?token=nope`,
      auth: 'Foo bar',
      expect: 401,
    });
    await runCases('bootstrap', cases);
  });

  it('unknown paths: 404 when authenticated, 401 otherwise; path tricks do not bypass authentication', async () => {
    // `/` is the status page (public, no data): see ui-browser.test.ts and events.test.ts.
    const unknown = [
      '/api',
      '/v2/cluster',
      '/v1',
      '/v1/clusters',
      `/v1/cluster/${U}/secret/${ok}/app-creds/password/extra`,
      '/.env',
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/favicon.ico',
      '/metrics/../token',
      '/%00',
      '/ping%00',
      `/v1/cluster/${U}/status/x`,
    ];
    const cases: Case[] = unknown.map((p) => ({
      id: `unknown ${p.slice(0, 24)}`,
      method: 'GET',
      path: p,
      expect: 404,
      message: /no route/,
    }));
    // An empty segment is a missing part: 400 (or no route, 404), never another route.
    cases.push({ id: 'empty segment', method: 'GET', path: `/v1/cluster/${U}/secret//x`, expect: [400, 404] });
    cases.push({
      id: 'empty key',
      method: 'PUT',
      path: `/v1/cluster/${U}/secret/${ok}/app-creds/`,
      body: 'v',
      expect: [400, 404],
    });
    const tricks: Array<[string, number]> = [
      ['//v1/cluster', 401],
      [`/health/../v1/cluster/${U}/secret`, 401],
      [`/v1/cluster/${U}/bootstrap/../secret`, 401],
      [`/v1/cluster/x/bootstrap/../../${U}/secret`, 401],
      [`/v1/cluster/${U}/secret?x=/health`, 401],
      [`/v1/cluster/${U}/secret#/health`, 401],
      ['/V1/CLUSTER', 401],
      ['/health/', 401],
      [`/v1/cluster/..%2F..%2Fv1%2Fcluster/bootstrap`, 400],
      [`/v1/cluster/${U}%2Fsecret/bootstrap`, 400],
      ['/HEALTH', 401],
      ['/metrics', 401],
      ['/openapi.json', 401],
      ['/ping', 401],
    ];
    for (const [p, want] of tricks)
      cases.push({
        id: `anon ${p.replace(/[0-9a-f-]{36}/g, '{u}').slice(0, 30)}`,
        method: 'GET',
        path: p,
        auth: null,
        expect: want,
      });
    await runCases('unknown-path', cases);
  });

  it('service routes with junk headers and queries still answer', async () => {
    const junk: Array<[string, string]> = [
      ['Accept', '*/*;q=garbage'],
      ['Content-Type', 'x/y; charset=nonsense'],
      ['X-Forwarded-For', '1.2.3.4, <script>'],
      ['Cookie', 'a='.repeat(1000)],
      ['Range', 'bytes=0-0,-1'],
      ['If-None-Match', '*'],
      ['Accept-Encoding', 'br;q=2, gzip;q=-1'],
    ];
    const cases: Case[] = [];
    for (const p of ['/ping', '/metrics', '/openapi.json', '/health', '/v1/cluster']) {
      cases.push({
        id: `junk headers ${p}`,
        method: 'GET',
        path: `${p}?a=%ZZ&b[]=1&b[]=2&${'c=1&'.repeat(500)}`,
        headers: junk,
        expect: 200,
      });
    }
    cases.push({ id: 'HEAD /v1/cluster', method: 'HEAD', path: '/v1/cluster', expect: 200 });
    cases.push({
      id: 'upper-case cluster UUID',
      method: 'GET',
      path: `/v1/cluster/${U.toUpperCase()}/status`,
      expect: 200,
    });
    cases.push({
      id: 'absolute-form target',
      method: 'GET',
      path: `http://evil.example/v1/cluster/${U}/status`,
      expect: 200,
    });
    cases.push({
      id: '1200 headers',
      method: 'GET',
      path: '/ping',
      headers: Array.from({ length: 1200 }, (_, i): [string, string] => [`h${i}`, '1']),
      expect: 200,
    });
    await runCases('service', cases);
  });

  it('requests Node cannot parse: 400/431 from Node itself, or the connection closed', async () => {
    const A = s.admin;
    const r = (text: string) => Buffer.from(text, 'latin1');
    const node = (id: string, raw: Buffer, expect: number | number[]): Case => ({
      id,
      method: 'RAW',
      path: '',
      raw,
      expect,
      origin: 'node',
    });
    const cases: Case[] = [
      node('64 KiB header', r(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`), 431),
      node(
        '64 KiB Authorization',
        r(`GET /v1/cluster HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(64 * 1024)}\r\n\r\n`),
        431,
      ),
      node(
        '20 KiB URL',
        r(`GET /v1/cluster/${U}/secret/${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\n\r\n`),
        431,
      ),
      node('unknown method', r(`FOO /ping HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\n\r\n`), 400),
      node(
        'raw invalid UTF-8 in path',
        Buffer.concat([
          r('GET /v1/cluster/'),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
          r(`/status HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\n\r\n`),
        ]),
        400,
      ),
      // llhttp takes `GET /path CRLF` as an HTTP/0.9-style request line and the
      // rest as request headers: the app answers for the truncated path, and
      // the injected line must not come back as a response header.
      node(
        'raw CR LF in path',
        r(
          `GET /v1/cluster/${U}/secret/${ok}/a\r\nX-Injected: yes/k HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\n\r\n`,
        ),
        [400, 404],
      ),
      node(
        'raw space in path',
        r(`GET /v1/cluster/a b/status HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\n\r\n`),
        400,
      ),
      node(
        'Content-Length and chunked',
        r(
          `PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        ),
        400,
      ),
      node(
        'Content-Length not a number',
        r(`PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nContent-Length: abc\r\n\r\n`),
        400,
      ),
      node(
        'two Content-Lengths',
        r(
          `PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
        ),
        400,
      ),
      node(
        'negative Content-Length',
        r(`PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nContent-Length: -1\r\n\r\n`),
        400,
      ),
      node(
        'bad chunk size',
        r(
          `PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
        ),
        400,
      ),
      node('no Host', r('GET /health HTTP/1.1\r\n\r\n'), 400),
      node('HTTP/2 preface', r('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 400),
      node('binary garbage', Buffer.from([0, 1, 2, 3, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]), 400),
      node(
        'control character in header',
        r(`GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \x01\x02\r\n\r\n`),
        400,
      ),
      node('LF-only line ends', r(`GET /ping HTTP/1.1\nHost: x\nAuthorization: ${A}\n\n`), 400),
      node('obsolete line folding', r(`GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Basic\r\n  abc\r\n\r\n`), 400),
      node('header name with space', r(`GET /ping HTTP/1.1\r\nHost: x\r\nAuth orization: x\r\n\r\n`), 400),
      node('HTTP/9.9', r('GET /health HTTP/9.9\r\nHost: x\r\n\r\n'), [400, 505]),
      node(
        'Expect: something',
        r(
          `PUT ${secret(U)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${A}\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nv`,
        ),
        417,
      ),
      {
        id: 'CONNECT without a listener',
        method: 'RAW',
        path: '',
        raw: r('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'),
        expect: 0,
        origin: 'closed',
      },
    ];
    await runCases('unparseable', cases);
  });

  it(`slow bodies and slow headers do not starve the server; listen() bounds them${SOAK ? ' (and the bound is enforced)' : ''}`, async function () {
    // What listen() leaves the timeouts at: Node's defaults unless it sets them.
    const probe = await listen(() => undefined, '127.0.0.1', 0);
    const { requestTimeout, headersTimeout, keepAliveTimeout, timeout } = probe.server;
    await probe.close();
    console.log(
      `    [hostile/slow] listen(): requestTimeout=${requestTimeout}ms headersTimeout=${headersTimeout}ms keepAliveTimeout=${keepAliveTimeout}ms socket timeout=${timeout}ms`,
    );
    expect(requestTimeout, 'requestTimeout bounds a slow body').to.be.above(0).and.to.be.below(Infinity);
    expect(headersTimeout, 'headersTimeout bounds slow headers').to.be.above(0).and.to.be.at.most(requestTimeout);

    const open = (): Promise<Socket> =>
      new Promise((res, rej) => {
        const k = connect(port, host, () => res(k));
        k.on('error', rej);
      });
    const socks: Array<{ k: Socket; kind: string; closedAt?: number; got: Buffer[] }> = [];
    const t0 = Date.now();
    for (let i = 0; i < 12; i++) {
      const k = await open();
      const entry: { k: Socket; kind: string; closedAt?: number; got: Buffer[] } = {
        k,
        kind: i % 3 === 0 ? 'headers' : i % 3 === 1 ? 'body' : 'drip',
        got: [],
      };
      k.on('data', (d: Buffer) => entry.got.push(d));
      k.on('close', () => {
        entry.closedAt = Date.now();
      });
      k.on('error', () => undefined);
      if (entry.kind === 'headers') k.write(`PUT ${secret(U, ok, 'slow', `h${i}`)} HTTP/1.1\r\nHost: x\r\nAuthoriz`);
      else
        k.write(
          `PUT ${secret(U, ok, 'slow', `b${i}`)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${s.admin}\r\nContent-Length: 100000\r\n\r\nabc`,
        );
      socks.push(entry);
    }
    const drip = setInterval(() => {
      for (const e of socks) if (e.kind === 'drip' && e.closedAt === undefined) e.k.write('x');
    }, 200);
    try {
      // While they hang, the service answers everyone else promptly.
      for (let i = 0; i < 3; i++) {
        const t = Date.now();
        const h = await fetch(`${s.url}/health`);
        expect(h.status).to.equal(200);
        const l = await fetch(`${s.url}/v1/cluster/${U}/secret`, { headers: { Authorization: s.admin } });
        expect(l.status).to.equal(200);
        await l.arrayBuffer();
        expect(Date.now() - t, 'answers while slow clients hang').to.be.below(2000);
        await new Promise((r) => setTimeout(r, 300));
      }
      console.log(
        `    [hostile/slow] injected 12 stalled/dripping PUTs (headers cut, body 3 of 100000 bytes, 1 byte/200ms); checked /health and a listing answer < 2 s meanwhile; ${socks.filter((e) => e.closedAt).length} closed by the server after ${Date.now() - t0} ms`,
      );
      if (SOAK) {
        // The bound itself: the server must close a stalled connection within
        // its timeout plus Node's connection-check interval (30 s).
        this.timeout(requestTimeout + 120_000);
        const limit = requestTimeout + 30_000 + 10_000;
        await waitFor(
          () => socks.filter((e) => e.kind !== 'drip').every((e) => e.closedAt !== undefined),
          limit,
          undefined,
          'stalled connections closed by the server',
        );
        for (const e of socks.filter((x) => x.kind !== 'drip')) {
          const bound = (e.kind === 'headers' ? headersTimeout : requestTimeout) + 30_000 + 10_000;
          expect(e.closedAt! - t0, `${e.kind} stall closed within ${bound} ms`).to.be.below(bound);
          const text = Buffer.concat(e.got).toString('latin1');
          if (text) expect(text).to.match(/^HTTP\/1\.1 408/);
        }
        console.log(
          `    [hostile/slow] soak: stalled connections closed after ${Math.max(...socks.filter((x) => x.kind !== 'drip').map((e) => e.closedAt! - t0))} ms`,
        );
      }
    } finally {
      clearInterval(drip);
      for (const e of socks) e.k.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${s.url}/health`)).status).to.equal(200);
  });

  it('a client that hangs up mid-body leaves nothing behind', async () => {
    for (let i = 0; i < 5; i++) {
      const k = connect(port, host);
      k.on('error', () => undefined);
      await new Promise<void>((r) => k.once('connect', () => r()));
      k.write(
        `PUT ${secret(U, ok, 'aborted', `k${i}`)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${s.admin}\r\nContent-Length: 5000\r\n\r\n${'z'.repeat(100 * i)}`,
      );
      await new Promise((r) => setTimeout(r, 50));
      k.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: s.admin } })).text();
    const fiveHundreds = [
      ...metrics.matchAll(/^cluster_manager_http_requests_total\{[^}]*status="5\d\d"[^}]*\} (\d+)/gm),
    ].reduce((n, m) => n + Number(m[1]), 0);
    console.log(
      `    [hostile/abort] injected 5 PUTs cut off mid-body; checked /health 200 and no commit (metrics now count ${fiveHundreds} answers as 5xx)`,
    );
    expect((await fetch(`${s.url}/health`)).status).to.equal(200);
    expect(await s.t.core.git.branches(U)).to.deep.equal(baseline.head);
  });

  it('client-caused failures are not dumped unstructured on stderr (they belong in the JSON log, if anywhere)', () => {
    const text = stderr.join('');
    const traces = text.split(/\n\s*\n/).filter((b) => b.trim()).length;
    console.log(
      `    [hostile/stderr] checked stderr after ${results.length} hostile requests, stalls and hang-ups: ${text.length} bytes in ${traces} blocks`,
    );
    expect(text, `Koa's default error handler wrote to stderr:\n${text.slice(0, 600)}`).to.equal('');
  });

  it('wrote nothing to Git or the Config Store, and still serves normal requests', async () => {
    await waitFor(() => s.m.status.pending === 0, 10_000, undefined, 'status writes settled');
    const now = await snapshot();
    console.log(
      `    [hostile/after] checked repo head ${now.head.main?.slice(0, 12)} (was ${baseline.head.main?.slice(0, 12)}), setup status ${now.setup} entries (was ${baseline.setup}), edge status ${now.edge} (was ${baseline.edge})`,
    );
    expect(results.length, 'corpus size').to.be.at.least(200);
    expect(now.head, 'cluster repo head').to.deep.equal(baseline.head);
    expect(now.setup, 'setup status entries').to.equal(baseline.setup);
    expect(now.edge, 'edge status entries').to.equal(baseline.edge);
    expect(now.edgeU, 'edge status of the cluster').to.equal(baseline.edgeU);
    const h = await fetch(`${s.url}/health`);
    expect(h.status).to.equal(200);
    expect(((await h.json()) as { ready: boolean }).ready).to.equal(true);
    const l = await fetch(`${s.url}/v1/cluster/${U}/secret/${ok}/app-creds`, { headers: { Authorization: s.admin } });
    expect(l.status).to.equal(200);
    expect(((await l.json()) as { keys: string[] }).keys).to.deep.equal(['password']);
    const p = await fetch(`${s.url}${secret(U, ok, 'app-creds', 'password')}?dryrun`, {
      method: 'PUT',
      headers: { Authorization: s.admin },
      body: 'fine',
    });
    expect(p.status).to.equal(200);
  });
});
