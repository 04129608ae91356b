import Router from '@koa/router';
import type { Context } from 'koa';
import { readRawBody } from '../../lib/body.js';
import { HttpError } from '../../lib/http-errors.js';
import {
  describeCertificate,
  parseSealingCertificate,
  type CertificateDescription,
  type SealingCertificate,
} from '../../sealing/certificate.js';
import { sealedSecretPath } from '../../sealing/manifest.js';
import { assertSecretAddress } from '../../sealing/names.js';
import { listSealed, removeEdit, sealEdit, type SecretAddress } from '../../sealing/repo-secrets.js';
import { WriteQueueTimeout, type Edit } from '../../repo/writer.js';
import { isSealingScope, type SealingScope } from '../../sealing/seal.js';
import { MAX_SECRET_BYTES } from '../../sealing/limits.js';
import { readStatus } from '../../reconcile/setup-status.js';
import type { ApiDeps } from '../deps.js';
import { refusalOf } from '../errors.js';
import { clusterParam, isDryRun, principalOf } from '../params.js';

/**
 * Back-pressure: past these many waiting changes a request is refused at
 * once (429), and a change whose write has not started within
 * MAX_QUEUE_WAIT_MS is dropped (503); both with Retry-After, both before
 * anything is written. A client thus hears within seconds, never hangs.
 */
export const MAX_WAITING_PER_REPO = 256;
const MAX_WAITING_TOTAL = 4096;
export const MAX_QUEUE_WAIT_MS = 10_000;
/**
 * A change not pushed (or a listing not read) this long after it was
 * queued is given up with 503, its Git requests timing out sooner: a
 * hanging Git server costs a client at most this long, not a queue wait
 * plus a Git timeout or two.
 */
const MAX_WRITE_MS = 15_000;
/** How long a listing waits for the cluster's certificate before showing it as null. */
const CERTIFICATE_LOOKUP_MS = 1_000;

/** Sealing secrets into a cluster's repo, removing them, and listing what is sealed. */
export function secretRoutes(d: ApiDeps): Router {
  const r = new Router();
  const m = d.manager;
  const u = m.config.uuids;
  const parsed = new Map<string, SealingCertificate>();

  const authorise = async (ctx: Context): Promise<string> => {
    const cluster = clusterParam(ctx);
    await d.acl.require(principalOf(ctx), u.perm.manageSecrets, cluster, `manage the secrets of cluster ${cluster}`);
    return cluster;
  };
  const address = (ctx: Context): SecretAddress => {
    const p = (ctx as Context & { params: Record<string, string> }).params;
    assertSecretAddress(p.namespace, p.name, p.key);
    return { namespace: p.namespace!, name: p.name!, key: p.key! };
  };
  /** The cluster must be commissioned: its repo is where secrets go. */
  const commissioned = (cluster: string) => {
    const st = readStatus(m.status.get(cluster));
    if (!st) throw new HttpError(404, `no edge cluster ${cluster}`);
    if (!st.repo?.head)
      throw new HttpError(409, `the cluster's repo is not populated yet (phase ${st.phase})`, {}, { phase: st.phase });
  };
  const edgeStatus = async (cluster: string, fresh = false): Promise<Record<string, unknown>> => {
    // Absence is a refusal: never on the word of a cached entry.
    const e =
      (await m.edgeStatus.get(cluster, { fresh })) ??
      (fresh ? undefined : await m.edgeStatus.get(cluster, { fresh: true }));
    if (!e)
      throw new HttpError(
        404,
        `no Edge cluster status entry for ${cluster}: the edge cluster has not reported its sealing certificate yet`,
      );
    return e;
  };
  const usableCertificate = (cluster: string, e: Record<string, unknown>): SealingCertificate => {
    if (typeof e.kubeseal_cert !== 'string' || !e.kubeseal_cert.trim()) {
      throw new HttpError(
        503,
        `the edge cluster ${cluster} has not reported a sealing certificate (kubeseal_cert) yet`,
        { 'Retry-After': '60' },
        { reason: 'no-certificate' },
      );
    }
    const now = d.now?.() ?? new Date();
    // Parsing X.509 costs more than the rest of a seal; the expiry is checked every time.
    const hit = parsed.get(e.kubeseal_cert);
    if (hit && now <= hit.notAfter) return hit;
    const cert = parseSealingCertificate(e.kubeseal_cert, now);
    if (parsed.size >= 1000) parsed.clear();
    parsed.set(e.kubeseal_cert, cert);
    return cert;
  };
  /**
   * The cluster's sealing certificate. A refusal is never based on a cached
   * entry: the entry is read again first, in case the edge reported a new
   * certificate a moment ago.
   */
  const certificate = async (cluster: string, fresh = false): Promise<SealingCertificate> => {
    const e = await edgeStatus(cluster, fresh);
    try {
      return usableCertificate(cluster, e);
    } catch (err) {
      if (fresh) throw err;
      return usableCertificate(cluster, await edgeStatus(cluster, true));
    }
  };
  const scopeOf = (ctx: Context): SealingScope => {
    const s = ctx.query.scope ?? 'strict';
    if (!isSealingScope(s))
      throw new HttpError(400, `scope must be strict, namespace-wide or cluster-wide, not ${JSON.stringify(s)}`);
    return s;
  };
  /**
   * Announces a write to the cluster's repo writer while the request is
   * still being checked (so a commit under way waits a moment for it) and
   * makes it once `prepare` has the edit.
   */
  const write = async (cluster: string, op: string, prepare: () => Promise<{ edit: Edit; count: () => number }>) => {
    const writer = await m.repos.writer(cluster);
    if (writer.waiting >= MAX_WAITING_PER_REPO || m.repos.waiting >= MAX_WAITING_TOTAL) {
      d.metrics.secretWrites.inc({ op, result: 'refused' });
      throw new HttpError(
        429,
        `too many changes are waiting to be written (${writer.waiting} for this cluster, ${m.repos.waiting} in all); try again shortly`,
        { 'Retry-After': '2' },
      );
    }
    const arrived = writer.expect();
    let edit: Edit;
    let count: () => number;
    try {
      ({ edit, count } = await prepare());
    } finally {
      arrived();
    }
    try {
      const res = await writer.submit(edit, { maxWaitMs: MAX_QUEUE_WAIT_MS, deadlineMs: MAX_WRITE_MS });
      d.metrics.secretWrites.inc({ op, result: res.committed ? 'committed' : 'unchanged' });
      // The secret is durable once pushed; the count, and the head the repo is
      // now at (so the drift check knows this move is the service's own),
      // follow through the status queue.
      void m.status.update(cluster, {
        secrets: { count: count() },
        ...(res.committed ? { repo: { head: res.head } } : {}),
      });
      return res;
    } catch (e) {
      d.metrics.secretWrites.inc({ op, result: 'failed' });
      if (e instanceof HttpError || refusalOf(e)) throw e;
      if (e instanceof WriteQueueTimeout)
        throw new HttpError(503, `${e.message}: the cluster's repo is busy; try again shortly`, { 'Retry-After': '5' });
      throw new HttpError(503, `the change could not be pushed to the cluster's repo: ${(e as Error).message}`, {
        'Retry-After': '5',
      });
    }
  };
  const path = '/v1/cluster/:uuid/secret/:namespace/:name/:key';

  const readCurrent = (cluster: string, path: string) =>
    m.repos.readFile(cluster, path, { deadlineMs: MAX_WRITE_MS }).catch((e: Error) => {
      throw new HttpError(503, `the cluster's repo cannot be read from the Git server: ${e.message}`);
    });

  r.put(path, async (ctx) => {
    const cluster = await authorise(ctx);
    const a = address(ctx);
    const scope = scopeOf(ctx);
    // One value alone may fill the Secret; the total is checked against the file.
    const value = await readRawBody(ctx, MAX_SECRET_BYTES).catch((e: unknown) => {
      if (e instanceof HttpError && e.status === 413)
        throw new HttpError(413, e.message, e.headers, { reason: 'value-too-large' });
      throw e;
    });
    commissioned(cluster);
    let count = 0;
    const seal = async () =>
      sealEdit(a, value, await certificate(cluster), scope, (n) => {
        count = n;
      });
    if (isDryRun(ctx)) {
      const s = await seal();
      const existing = await readCurrent(cluster, s.path);
      ctx.body = s.render(existing);
      ctx.type = 'application/yaml';
      return;
    }
    await write(cluster, 'seal', async () => ({ edit: (await seal()).edit, count: () => count }));
    ctx.status = 204;
  });

  r.delete(path, async (ctx) => {
    const cluster = await authorise(ctx);
    const a = address(ctx);
    commissioned(cluster);
    let count = 0;
    const s = removeEdit(a, (n) => {
      count = n;
    });
    if (isDryRun(ctx)) {
      await edgeStatus(cluster);
      const res = s.render(await readCurrent(cluster, s.path));
      ctx.body = {
        path: s.path,
        changed: res.changed,
        deletesFile: res.changed && res.text === undefined,
        manifest: res.text ?? null,
      };
      return;
    }
    await write(cluster, 'remove', async () => {
      await edgeStatus(cluster);
      return { edit: s.edit, count: () => count };
    });
    ctx.status = 204;
  });

  const listing = async (cluster: string) => {
    try {
      return await (
        await m.repos.writer(cluster)
      ).read(async (files) => listSealed(files), { deadlineMs: MAX_WRITE_MS });
    } catch (e) {
      throw new HttpError(503, `the cluster's repo cannot be read from the Git server: ${(e as Error).message}`);
    }
  };

  /**
   * The certificate a seal would use now, for the listing: null when the
   * edge has reported none that can be used, or when the Config Store does
   * not answer within CERTIFICATE_LOOKUP_MS. The listing is of the repo and
   * must not wait on, or fail with, another service.
   */
  const currentCertificate = async (cluster: string): Promise<CertificateDescription | null> => {
    const lookup = (async () => {
      const e = await m.edgeStatus.get(cluster);
      return e ? describeCertificate(usableCertificate(cluster, e), d.now?.() ?? new Date()) : null;
    })().catch(() => null);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), CERTIFICATE_LOOKUP_MS);
    });
    try {
      return await Promise.race([lookup, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  /** Each secret with the cluster's current certificate, so a skew (notBefore ahead) or a stale key shows. */
  const described = async (cluster: string) => {
    const [list, sealingCertificate] = await Promise.all([listing(cluster), currentCertificate(cluster)]);
    return list.map((s) => ({ ...s, sealingCertificate }));
  };

  r.get('/v1/cluster/:uuid/secret', async (ctx) => {
    const cluster = await authorise(ctx);
    commissioned(cluster);
    ctx.body = await described(cluster);
  });

  r.get('/v1/cluster/:uuid/secret/:namespace/:name', async (ctx) => {
    const cluster = await authorise(ctx);
    const p = (ctx as Context & { params: Record<string, string> }).params;
    assertSecretAddress(p.namespace, p.name);
    commissioned(cluster);
    const found = (await described(cluster)).find((s) => s.path === sealedSecretPath(p.namespace!, p.name!));
    if (!found) throw new HttpError(404, `no sealed secret ${p.namespace}/${p.name}`);
    ctx.body = found;
  });

  r.post('/v1/cluster/:uuid/secret-reseal', async (ctx) => {
    const cluster = await authorise(ctx);
    commissioned(cluster);
    const cert = await certificate(cluster, true);
    const stale: Array<{ namespace: string; name: string; key: string; sealedFor: string | null }> = [];
    for (const s of await listing(cluster)) {
      for (const key of s.keys) {
        const fp = s.certFingerprints[key] ?? null;
        if (fp !== cert.fingerprint) stale.push({ namespace: s.namespace, name: s.name, key, sealedFor: fp });
      }
    }
    ctx.body = {
      certificate: cert.fingerprint,
      sealingCertificate: describeCertificate(cert, d.now?.() ?? new Date()),
      stale,
      message: stale.length
        ? 'These values were sealed for another certificate. They cannot be re-encrypted here: the Cluster Manager never keeps plaintext. PUT each value again to seal it for the current certificate.'
        : 'Every sealed value is sealed for the current certificate.',
    };
  });

  return r;
}
