import { expect } from 'chai';
import {
  backoffDelay,
  WorkAbortedError,
  WorkQueue,
  type Result,
  type WorkQueueOptions,
} from '../../src/reconcile/queue.js';

const A = '7b6e3a52-0f51-4a53-9d5b-1f3b0c1a0001';
const B = '7b6e3a52-0f51-4a53-9d5b-1f3b0c1a0002';
const C = '7b6e3a52-0f51-4a53-9d5b-1f3b0c1a0003';
const D = '7b6e3a52-0f51-4a53-9d5b-1f3b0c1a0004';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 1000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(1);
  }
}

/** Lets pending microtasks and immediate callbacks run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

type Opts = Partial<WorkQueueOptions> & Pick<WorkQueueOptions, 'worker'>;

const queues: WorkQueue[] = [];

function makeQueue(opts: Opts): WorkQueue {
  const q = new WorkQueue({
    concurrency: 1,
    backoffBaseMs: 10,
    backoffMaxMs: 1000,
    random: () => 0.5, // no jitter unless a test asks for it
    ...opts,
  });
  queues.push(q);
  return q;
}

describe('reconcile work queue', () => {
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop()));
  });

  describe('construction', () => {
    it('refuses bad options', () => {
      const worker = async () => {};
      expect(() => new WorkQueue({ worker, concurrency: 0, backoffBaseMs: 10, backoffMaxMs: 100 })).to.throw(
        RangeError,
        /concurrency/,
      );
      expect(() => new WorkQueue({ worker, concurrency: 1.5, backoffBaseMs: 10, backoffMaxMs: 100 })).to.throw(
        RangeError,
        /concurrency/,
      );
      expect(() => new WorkQueue({ worker, concurrency: 1, backoffBaseMs: -1, backoffMaxMs: 100 })).to.throw(
        RangeError,
        /backoffBaseMs/,
      );
      expect(() => new WorkQueue({ worker, concurrency: 1, backoffBaseMs: 10, backoffMaxMs: 5 })).to.throw(
        RangeError,
        /backoffMaxMs/,
      );
      expect(() => new WorkQueue({ worker, concurrency: 1, backoffBaseMs: 10, backoffMaxMs: Infinity })).to.throw(
        RangeError,
        /backoffMaxMs/,
      );
    });
  });

  describe('basic running', () => {
    it('runs an added key once and reports it in stats', async () => {
      const seen: string[] = [];
      const q = makeQueue({ worker: async (key) => void seen.push(key) });
      expect(q.idle()).to.be.instanceOf(Promise);
      q.add(A);
      await q.idle();
      expect(seen).to.deep.equal([A]);
      expect(q.stats()).to.deep.equal({ queued: 0, running: 0, scheduled: 0, processed: 1, failed: 0 });
      expect(q.state(A)).to.equal('idle');
    });

    it('does not call the worker synchronously from add', async () => {
      let calls = 0;
      const q = makeQueue({ worker: async () => void calls++ });
      q.add(A);
      expect(calls).to.equal(0);
      expect(q.state(A)).to.equal('running');
      expect(q.stats().running).to.equal(1);
      await q.idle();
      expect(calls).to.equal(1);
    });

    it('resolves idle at once when there is nothing to do', async () => {
      const q = makeQueue({ worker: async () => {} });
      let done = false;
      await q.idle().then(() => (done = true));
      expect(done).to.equal(true);
    });

    it('treats a synchronous throw from the worker as a failure', async () => {
      const q = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: (() => {
          throw new Error('sync boom');
        }) as unknown as (key: string, signal: AbortSignal) => Promise<Result>,
      });
      q.add(A);
      await q.idle();
      expect(q.failures(A)).to.equal(1);
      expect((q.lastError(A) as Error).message).to.equal('sync boom');
      expect(q.stats().failed).to.equal(1);
    });
  });

  describe('deduplication', () => {
    it('runs a key queued several times only once', async () => {
      const gate = deferred();
      const seen: string[] = [];
      const q = makeQueue({
        worker: async (key) => {
          seen.push(key);
          if (key === A) await gate.promise;
        },
      });
      q.add(A); // occupies the only worker
      q.add(B);
      q.add(B);
      q.add(B);
      expect(q.stats().queued).to.equal(1);
      expect(q.state(B)).to.equal('queued');
      gate.resolve();
      await q.idle();
      expect(seen).to.deep.equal([A, B]);
      expect(q.stats().processed).to.equal(2);
    });
  });

  describe('per-key serialization and supersede', () => {
    it('never runs the same key twice at once and re-runs it after an add during a run', async () => {
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      const first = deferred();
      const q = makeQueue({
        concurrency: 4,
        worker: async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          runs++;
          if (runs === 1) await first.promise;
          else await sleep(2);
          active--;
        },
      });
      q.add(A);
      await settle();
      expect(runs).to.equal(1);
      q.add(A);
      q.add(A);
      q.add(A);
      await settle();
      // Still one run, even though three more workers are free.
      expect(runs).to.equal(1);
      expect(q.stats().running).to.equal(1);
      expect(q.stats().queued).to.equal(0);
      first.resolve();
      await q.idle();
      expect(runs).to.equal(2);
      expect(maxActive).to.equal(1);
    });

    it('tells the running worker through its signal that newer work exists', async () => {
      const gate = deferred();
      const signals: AbortSignal[] = [];
      const q = makeQueue({
        worker: async (_key, signal) => {
          signals.push(signal);
          if (signals.length === 1) await gate.promise;
        },
      });
      q.add(A);
      await settle();
      expect(signals[0].aborted).to.equal(false);
      q.add(A);
      expect(signals[0].aborted).to.equal(true);
      expect(signals[0].reason).to.be.instanceOf(WorkAbortedError);
      expect((signals[0].reason as WorkAbortedError).kind).to.equal('superseded');
      expect((signals[0].reason as WorkAbortedError).key).to.equal(A);
      gate.resolve();
      await q.idle();
      expect(signals).to.have.length(2);
      expect(signals[1]).to.not.equal(signals[0]);
      expect(signals[1].aborted).to.equal(false);
    });

    it('replaces a pending retry with an immediate run', async () => {
      let runs = 0;
      const q = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async () => {
          runs++;
          if (runs === 1) throw new Error('first fails');
        },
      });
      q.add(A);
      await q.idle();
      expect(q.scheduledCount).to.equal(1);
      expect(q.state(A)).to.equal('scheduled');
      q.add(A);
      expect(q.scheduledCount).to.equal(0);
      await q.idle();
      expect(runs).to.equal(2);
      expect(q.failures(A)).to.equal(0);
      expect(q.scheduledCount).to.equal(0);
    });

    it('re-runs at once, not after backoff, when a superseded run fails', async () => {
      const gate = deferred();
      let runs = 0;
      const q = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async () => {
          runs++;
          if (runs === 1) {
            await gate.promise;
            throw new Error('stale run failed');
          }
        },
      });
      q.add(A);
      await settle();
      q.add(A);
      gate.resolve();
      await q.idle();
      expect(runs).to.equal(2);
      expect(q.scheduledCount).to.equal(0);
      expect(q.stats().failed).to.equal(1);
      expect(q.failures(A)).to.equal(0);
    });

    it('lets a superseding add win over a requested requeue', async () => {
      const gate = deferred();
      let runs = 0;
      const q = makeQueue({
        worker: async () => {
          runs++;
          if (runs === 1) {
            await gate.promise;
            return { requeueAfterMs: 10_000 };
          }
        },
      });
      q.add(A);
      await settle();
      q.add(A);
      gate.resolve();
      await q.idle();
      expect(runs).to.equal(2);
      expect(q.scheduledCount).to.equal(0);
    });
  });

  describe('concurrency and order', () => {
    it('runs at most `concurrency` workers at once across keys', async () => {
      let active = 0;
      let maxActive = 0;
      const seen = new Set<string>();
      const q = makeQueue({
        concurrency: 2,
        worker: async (key) => {
          active++;
          maxActive = Math.max(maxActive, active);
          await sleep(5);
          seen.add(key);
          active--;
        },
      });
      const keys = [A, B, C, D, 'e', 'f'];
      for (const k of keys) q.add(k);
      expect(q.stats().running).to.equal(2);
      expect(q.stats().queued).to.equal(4);
      await q.idle();
      expect(maxActive).to.equal(2);
      expect([...seen].sort()).to.deep.equal([...keys].sort());
      expect(q.stats().processed).to.equal(6);
    });

    it('serves keys first in, first out', async () => {
      const order: string[] = [];
      const q = makeQueue({ worker: async (key) => void order.push(key) });
      for (const k of [C, A, D, B]) q.add(k);
      await q.idle();
      expect(order).to.deep.equal([C, A, D, B]);
    });

    it('puts a key re-added during its run behind keys that were waiting', async () => {
      const gate = deferred();
      const order: string[] = [];
      const q = makeQueue({
        worker: async (key) => {
          order.push(key);
          if (order.length === 1) await gate.promise;
        },
      });
      q.add(A);
      await settle();
      q.add(B);
      q.add(A);
      q.add(C);
      gate.resolve();
      await q.idle();
      expect(order).to.deep.equal([A, B, C, A]);
    });

    it('keeps a queued key in place when it is added again', async () => {
      const gate = deferred();
      const order: string[] = [];
      const q = makeQueue({
        worker: async (key) => {
          order.push(key);
          if (order.length === 1) await gate.promise;
        },
      });
      q.add(D);
      q.add(A);
      q.add(B);
      q.add(A);
      gate.resolve();
      await q.idle();
      expect(order).to.deep.equal([D, A, B]);
    });
  });

  describe('backoff', () => {
    it('computes base * 2^(n-1) capped at max', () => {
      expect(backoffDelay(0, 10, 640)).to.equal(0);
      expect([1, 2, 3, 4, 5, 6, 7, 8, 50, 5000].map((n) => backoffDelay(n, 10, 640))).to.deep.equal([
        10, 20, 40, 80, 160, 320, 640, 640, 640, 640,
      ]);
      // The original's numbers: 10 s doubling up to 640 s.
      expect(backoffDelay(7, 10_000, 640_000)).to.equal(640_000);
    });

    it('retries a failing key with growing delays and counts failures', async () => {
      const t0 = 1_000_000;
      const delays: number[] = [];
      const callTimes: number[] = [];
      const q: WorkQueue = makeQueue({
        backoffBaseMs: 10,
        backoffMaxMs: 1000,
        now: () => t0,
        worker: async () => {
          callTimes.push(performance.now());
          throw new Error(`failure ${callTimes.length}`);
        },
      });
      const collect = async (n: number) => {
        await waitFor(() => q.failures(A) === n && q.state(A) === 'scheduled');
        delays.push(q.scheduledAt(A)! - t0);
      };
      q.add(A);
      for (let n = 1; n <= 4; n++) await collect(n);
      expect(delays).to.deep.equal([10, 20, 40, 80]);
      expect(q.failures(A)).to.equal(4);
      expect((q.lastError(A) as Error).message).to.equal('failure 4');
      expect(q.stats().failed).to.equal(4);
      // Real gaps between attempts follow the schedule (timers may be late, never early).
      const gaps = callTimes.slice(1).map((t, i) => t - callTimes[i]);
      expect(gaps).to.have.length(3);
      gaps.forEach((g, i) => expect(g).to.be.at.least(delays[i] - 2));
      q.remove(A);
    });

    it('caps the delay at backoffMaxMs', async () => {
      const t0 = 5_000;
      const delays: number[] = [];
      const q: WorkQueue = makeQueue({
        backoffBaseMs: 5,
        backoffMaxMs: 20,
        now: () => t0,
        worker: async () => {
          throw new Error('always');
        },
      });
      q.add(A);
      for (let n = 1; n <= 6; n++) {
        await waitFor(() => q.failures(A) === n && q.state(A) === 'scheduled');
        delays.push(q.scheduledAt(A)! - t0);
      }
      expect(delays).to.deep.equal([5, 10, 20, 20, 20, 20]);
      q.remove(A);
    });

    it('applies at most +/-10% jitter', async () => {
      const t0 = 0;
      const make = (r: number) =>
        makeQueue({
          backoffBaseMs: 10_000,
          backoffMaxMs: 10_000,
          now: () => t0,
          random: () => r,
          worker: async () => {
            throw new Error('x');
          },
        });
      const low = make(0);
      const mid = make(0.5);
      const high = make(0.999999);
      for (const q of [low, mid, high]) q.add(A);
      await Promise.all([low, mid, high].map((q) => q.idle()));
      expect(low.scheduledAt(A)).to.equal(9_000);
      expect(mid.scheduledAt(A)).to.equal(10_000);
      expect(high.scheduledAt(A)).to.be.within(10_999, 11_000);

      const rnd = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        now: () => t0,
        random: Math.random,
        worker: async () => {
          throw new Error('x');
        },
      });
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      for (const k of keys) rnd.add(k);
      await rnd.idle();
      for (const k of keys) expect(rnd.scheduledAt(k)).to.be.within(9_000, 11_000);
    });

    it('resets the failure count after a success', async () => {
      const t0 = 100;
      let runs = 0;
      const q: WorkQueue = makeQueue({
        backoffBaseMs: 5,
        backoffMaxMs: 1000,
        now: () => t0,
        worker: async () => {
          runs++;
          if (runs <= 3) throw new Error(`fail ${runs}`);
        },
      });
      q.add(A);
      await waitFor(() => runs === 4 && q.state(A) === 'idle');
      expect(q.failures(A)).to.equal(0);
      expect(q.lastError(A)).to.equal(undefined);
      expect(q.stats()).to.include({ processed: 4, failed: 3, scheduled: 0 });
    });

    it('starts again from the base delay after a success', async () => {
      const t0 = 100;
      let runs = 0;
      const q: WorkQueue = makeQueue({
        backoffBaseMs: 5,
        backoffMaxMs: 1000,
        now: () => t0,
        worker: async () => {
          runs++;
          if (runs !== 3) throw new Error(`fail ${runs}`);
        },
      });
      q.add(A);
      await waitFor(() => runs === 3 && q.state(A) === 'idle');
      expect(q.failures(A)).to.equal(0);
      q.add(A);
      await waitFor(() => runs === 4 && q.state(A) === 'scheduled');
      expect(q.failures(A)).to.equal(1);
      expect(q.scheduledAt(A)! - t0).to.equal(5);
      q.remove(A);
    });

    it('forget resets the failure count and last error', async () => {
      const t0 = 0;
      const q: WorkQueue = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 100_000,
        now: () => t0,
        worker: async () => {
          throw new Error('nope');
        },
      });
      q.add(A);
      await q.idle();
      q.add(A); // replaces the retry, fails again
      await q.idle();
      expect(q.failures(A)).to.equal(2);
      expect(q.scheduledAt(A)).to.equal(20_000);
      q.forget(A);
      expect(q.failures(A)).to.equal(0);
      expect(q.lastError(A)).to.equal(undefined);
      q.add(A);
      await q.idle();
      expect(q.failures(A)).to.equal(1);
      expect(q.scheduledAt(A)).to.equal(10_000);
    });

    it('keeps failure counts per key', async () => {
      const q = makeQueue({
        concurrency: 2,
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async (key) => {
          if (key === A) throw new Error('only A fails');
        },
      });
      q.add(A);
      q.add(B);
      await q.idle();
      expect(q.failures(A)).to.equal(1);
      expect(q.failures(B)).to.equal(0);
      expect(q.lastError(B)).to.equal(undefined);
      expect(q.state(A)).to.equal('scheduled');
      expect(q.state(B)).to.equal('idle');
    });
  });

  describe('requeueAfter', () => {
    it('schedules a later run without counting a failure', async () => {
      const t0 = 42;
      const times: number[] = [];
      const q = makeQueue({
        now: () => t0,
        worker: async () => {
          times.push(performance.now());
          if (times.length === 1) return { requeueAfterMs: 30 };
        },
      });
      q.add(A);
      await q.idle();
      expect(q.state(A)).to.equal('scheduled');
      expect(q.scheduledAt(A)).to.equal(t0 + 30);
      expect(q.scheduledCount).to.equal(1);
      expect(q.failures(A)).to.equal(0);
      await waitFor(() => times.length === 2);
      await q.idle();
      expect(times[1] - times[0]).to.be.at.least(28);
      expect(q.stats()).to.include({ processed: 2, failed: 0, scheduled: 0 });
    });

    it('runs again at once for requeueAfterMs of zero', async () => {
      let runs = 0;
      const q = makeQueue({
        worker: async () => {
          runs++;
          return runs === 1 ? { requeueAfterMs: 0 } : undefined;
        },
      });
      q.add(A);
      await q.idle();
      expect(runs).to.equal(2);
      expect(q.scheduledCount).to.equal(0);
    });

    it('clears the failure count when a run succeeds with a requeue', async () => {
      let runs = 0;
      const q = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async () => {
          runs++;
          if (runs === 1) throw new Error('first');
          return { requeueAfterMs: 10_000 };
        },
      });
      q.add(A);
      await q.idle();
      expect(q.failures(A)).to.equal(1);
      q.add(A);
      await q.idle();
      expect(q.failures(A)).to.equal(0);
      expect(q.state(A)).to.equal('scheduled');
    });
  });

  describe('remove', () => {
    it('drops a queued key', async () => {
      const gate = deferred();
      const seen: string[] = [];
      const q = makeQueue({
        worker: async (key) => {
          seen.push(key);
          if (key === A) await gate.promise;
        },
      });
      q.add(A);
      q.add(B);
      q.add(C);
      q.remove(B);
      expect(q.state(B)).to.equal('idle');
      expect(q.stats().queued).to.equal(1);
      gate.resolve();
      await q.idle();
      expect(seen).to.deep.equal([A, C]);
    });

    it('drops a scheduled retry and the failure record', async () => {
      let runs = 0;
      const q = makeQueue({
        backoffBaseMs: 15,
        backoffMaxMs: 15,
        worker: async () => {
          runs++;
          throw new Error('x');
        },
      });
      q.add(A);
      await q.idle();
      expect(q.scheduledCount).to.equal(1);
      q.remove(A);
      expect(q.scheduledCount).to.equal(0);
      expect(q.failures(A)).to.equal(0);
      await sleep(40);
      expect(runs).to.equal(1);
    });

    it('lets a running worker finish but schedules nothing after it', async () => {
      const gate = deferred();
      const signals: AbortSignal[] = [];
      let finished = 0;
      const q = makeQueue({
        backoffBaseMs: 5,
        backoffMaxMs: 5,
        worker: async (_key, signal) => {
          signals.push(signal);
          await gate.promise;
          finished++;
          throw new Error('fails after removal');
        },
      });
      q.add(A);
      await settle();
      q.add(A); // a re-run was pending; remove drops it too
      q.remove(A);
      expect(q.state(A)).to.equal('running');
      expect((signals[0].reason as WorkAbortedError).kind).to.equal('superseded');
      gate.resolve();
      await q.idle();
      expect(finished).to.equal(1);
      expect(q.scheduledCount).to.equal(0);
      expect(q.failures(A)).to.equal(0);
      await sleep(20);
      expect(signals).to.have.length(1);
    });

    it('aborts the signal of a running worker with kind "removed"', async () => {
      const gate = deferred();
      let signal!: AbortSignal;
      const q = makeQueue({
        worker: async (_key, s) => {
          signal = s;
          await gate.promise;
        },
      });
      q.add(A);
      await settle();
      q.remove(A);
      expect(signal.aborted).to.equal(true);
      expect((signal.reason as WorkAbortedError).kind).to.equal('removed');
      gate.resolve();
      await q.idle();
      expect(q.stats().processed).to.equal(1);
    });

    it('runs again when the key is added back while its removed run is still going', async () => {
      const gate = deferred();
      let runs = 0;
      const q = makeQueue({
        worker: async () => {
          runs++;
          if (runs === 1) await gate.promise;
        },
      });
      q.add(A);
      await settle();
      q.remove(A);
      q.add(A);
      gate.resolve();
      await q.idle();
      expect(runs).to.equal(2);
    });
  });

  describe('stop', () => {
    it('waits for running workers and starts nothing new', async () => {
      const gate = deferred();
      const seen: string[] = [];
      let finished = false;
      const q = makeQueue({
        worker: async (key) => {
          seen.push(key);
          if (key === A) {
            await gate.promise;
            finished = true;
          }
        },
      });
      q.add(A);
      q.add(B);
      await settle();
      let stopped = false;
      const p = q.stop().then(() => (stopped = true));
      expect(q.isStopped).to.equal(true);
      expect(q.stats().queued).to.equal(0);
      await sleep(5);
      expect(stopped).to.equal(false);
      gate.resolve();
      await p;
      expect(finished).to.equal(true);
      expect(seen).to.deep.equal([A]);
      q.add(C);
      await settle();
      expect(seen).to.deep.equal([A]);
      expect(q.stats()).to.include({ queued: 0, running: 0, scheduled: 0 });
    });

    it('tells running workers through their signal and drops scheduled work', async () => {
      const gate = deferred();
      let signal!: AbortSignal;
      let runs = 0;
      const q = makeQueue({
        concurrency: 2,
        backoffBaseMs: 10,
        backoffMaxMs: 10,
        worker: async (key, s) => {
          runs++;
          if (key === A) {
            signal = s;
            await gate.promise;
            throw new Error('failed during shutdown');
          }
          throw new Error('B fails');
        },
      });
      q.add(A);
      q.add(B);
      await waitFor(() => q.state(B) === 'scheduled');
      const p = q.stop();
      expect(q.scheduledCount).to.equal(0);
      expect((signal.reason as WorkAbortedError).kind).to.equal('stopped');
      gate.resolve();
      await p;
      expect(q.scheduledCount).to.equal(0);
      await sleep(25);
      expect(runs).to.equal(2);
      expect(q.stats()).to.include({ processed: 2, failed: 2 });
    });

    it('resolves at once when nothing is running, and is idempotent', async () => {
      const q = makeQueue({ worker: async () => {} });
      const p1 = q.stop();
      const p2 = q.stop();
      expect(p1).to.equal(p2);
      await p1;
      expect(q.isStopped).to.equal(true);
    });
  });

  describe('idle', () => {
    it('waits for queued and running work but not for scheduled retries', async () => {
      const gate = deferred();
      let runs = 0;
      const q = makeQueue({
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async (key) => {
          runs++;
          if (key === A) await gate.promise;
          if (key === B) throw new Error('B fails');
        },
      });
      q.add(A);
      q.add(B);
      let idle = false;
      const p = q.idle().then(() => (idle = true));
      await sleep(5);
      expect(idle).to.equal(false);
      gate.resolve();
      await p;
      expect(runs).to.equal(2);
      expect(q.scheduledCount).to.equal(1);
      expect(q.stats()).to.include({ queued: 0, running: 0, scheduled: 1 });
    });

    it('resolves when the last queued key is removed', async () => {
      const gate = deferred();
      const q = makeQueue({ worker: async () => gate.promise });
      q.add(A);
      q.add(B);
      const p = q.idle();
      q.remove(B);
      gate.resolve();
      await p;
      expect(q.stats()).to.include({ queued: 0, running: 0, processed: 1 });
    });
  });

  describe('timers', () => {
    it('does not keep the process alive', async () => {
      const created: NodeJS.Timeout[] = [];
      const original = globalThis.setTimeout;
      const spy = ((...args: Parameters<typeof setTimeout>) => {
        const t = original(...args);
        created.push(t);
        return t;
      }) as typeof setTimeout;
      let runs = 0;
      const q = makeQueue({
        concurrency: 2,
        backoffBaseMs: 10_000,
        backoffMaxMs: 10_000,
        worker: async (key) => {
          runs++;
          if (key === A) throw new Error('retry later');
          return { requeueAfterMs: 10_000 };
        },
      });
      globalThis.setTimeout = spy;
      try {
        q.add(A);
        q.add(B);
        await q.idle();
      } finally {
        globalThis.setTimeout = original;
      }
      expect(runs).to.equal(2);
      expect(q.scheduledCount).to.equal(2);
      expect(created.length).to.be.at.least(2);
      for (const t of created) expect(t.hasRef()).to.equal(false);
    });
  });
});
