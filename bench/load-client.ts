/**
 * A small keep-alive HTTP load generator for the benchmarks (node:http and
 * an Agent only: no dependencies). `concurrency` clients each send one
 * request at a time, read the whole answer and send the next, until
 * `durationMs` has passed or `maxRequests` have been sent.
 *
 * `runLoad` runs the clients in a child process (this file, forked with the
 * parent's loader flags), so that they use the other core rather than the
 * event loop of the server under test, which the benchmarks run in-process;
 * `runLoadHere` runs them in the calling process.
 *
 * Paths are templates: `{w}` is the client's index, `{n}` the client's
 * request number, `{i}` a sequence number over all clients, and `{NAME}`
 * picks `vars[NAME][w % vars[NAME].length]`.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface LoadSpec {
  /** Base URL, e.g. http://127.0.0.1:1234 (no trailing slash needed). */
  base: string;
  method?: string;
  path: string;
  vars?: Record<string, string[]>;
  headers?: Record<string, string>;
  /** A fresh random body of this many bytes for each request. */
  bodyBytes?: number;
  concurrency: number;
  durationMs: number;
  maxRequests?: number;
  /** Statuses that count as success; any 2xx when not given. */
  okStatus?: number[];
  timeoutMs?: number;
}

export interface LoadResult {
  concurrency: number;
  seconds: number;
  requests: number;
  ok: number;
  errors: number;
  /** Successful requests per second. */
  reqPerSecond: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  /** Response body bytes of successful requests. */
  bytes: number;
  bytesPerSecond: number;
  statuses: Record<string, number>;
  /** The first few distinct error descriptions. */
  sampleErrors: string[];
  /** CPU used by the process that ran the clients, in % of one core. */
  clientCpuPercent: number;
}

const round = (x: number, d = 2) => +x.toFixed(d);

/** Percentile of sorted values (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export function summarise(values: number[]): { mean: number; p50: number; p90: number; p99: number; max: number } {
  const s = Float64Array.from(values).sort();
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return {
    mean: round(mean),
    p50: round(percentile(s, 0.5)),
    p90: round(percentile(s, 0.9)),
    p99: round(percentile(s, 0.99)),
    max: round(s[s.length - 1] ?? NaN),
  };
}

/** Runs the load in this process. */
export async function runLoadHere(spec: LoadSpec): Promise<LoadResult> {
  const base = new URL(spec.base);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency, maxFreeSockets: spec.concurrency });
  const method = spec.method ?? 'GET';
  const ok = (status: number) => (spec.okStatus ? spec.okStatus.includes(status) : status >= 200 && status < 300);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const sampleErrors = new Set<string>();
  let requests = 0;
  let good = 0;
  let errors = 0;
  let bytes = 0;
  let seq = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + spec.durationMs;
  const max = spec.maxRequests ?? Infinity;

  const pathFor = (w: number, n: number): string =>
    spec.path.replace(/\{(\w+)\}/g, (_, k: string) => {
      if (k === 'w') return String(w);
      if (k === 'n') return String(n);
      if (k === 'i') return String(seq++);
      const list = spec.vars?.[k];
      if (!list?.length) throw new Error(`no value for {${k}} in ${spec.path}`);
      return list[w % list.length];
    });

  const once = (path: string): Promise<{ status: number; bytes: number; text?: string }> =>
    new Promise((resolve, reject) => {
      const body = spec.bodyBytes !== undefined ? randomBytes(spec.bodyBytes) : undefined;
      const headers: Record<string, string | number> = { ...spec.headers };
      if (body) {
        headers['Content-Length'] = body.length;
        headers['Content-Type'] ??= 'application/octet-stream';
      }
      const req = request(
        { host: base.hostname, port: base.port, method, path, agent, headers, timeout: spec.timeoutMs ?? 60_000 },
        (res) => {
          let n = 0;
          const keep: Buffer[] = [];
          const status = res.statusCode ?? 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (!ok(status) && n < 2048) keep.push(c);
          });
          res.on('end', () =>
            resolve({
              status,
              bytes: n,
              text: keep.length ? Buffer.concat(keep).toString('utf8').slice(0, 300) : undefined,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });

  const client = async (w: number) => {
    for (let n = 0; performance.now() < deadline && requests < max; n++) {
      requests++;
      const t0 = performance.now();
      try {
        const r = await once(pathFor(w, n));
        const ms = performance.now() - t0;
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (ok(r.status)) {
          good++;
          bytes += r.bytes;
          latencies.push(ms);
        } else {
          errors++;
          if (sampleErrors.size < 5) sampleErrors.add(`${r.status} ${r.text ?? ''}`.trim());
        }
      } catch (e) {
        errors++;
        statuses.error = (statuses.error ?? 0) + 1;
        if (sampleErrors.size < 5) sampleErrors.add((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, w) => client(w)));
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  return {
    concurrency: spec.concurrency,
    seconds: round(seconds),
    requests,
    ok: good,
    errors,
    reqPerSecond: round(good / seconds, 1),
    latencyMs: summarise(latencies),
    bytes,
    bytesPerSecond: Math.round(bytes / seconds),
    statuses,
    sampleErrors: [...sampleErrors],
    clientCpuPercent: round(((cpu.user + cpu.system) / 1e6 / seconds) * 100, 0),
  };
}

const SELF = fileURLToPath(import.meta.url);

/** Runs the load in a child process (same Node flags as this one, less profiling flags). */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const execArgv = process.execArgv.filter(
    (a) => !a.startsWith('--cpu-prof') && !a.startsWith('--heap-prof') && !a.startsWith('--inspect'),
  );
  const child = fork(SELF, [], {
    execArgv,
    env: { ...process.env, BENCH_LOAD_CHILD: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let done = false;
    child.on('message', (m: { result?: LoadResult; error?: string }) => {
      done = true;
      if (m.result) resolve(m.result);
      else reject(new Error(`load child failed: ${m.error}`));
      child.disconnect();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!done) reject(new Error(`load child exited with ${code} before reporting`));
    });
    child.send({ spec });
  });
}

if (process.env.BENCH_LOAD_CHILD === '1' && process.argv[1] === SELF && process.send) {
  process.once('message', (m: { spec: LoadSpec }) => {
    runLoadHere(m.spec).then(
      (result) => process.send!({ result }),
      (e: Error) => process.send!({ error: e.stack ?? e.message }),
    );
  });
}
