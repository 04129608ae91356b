import Router from '@koa/router';
import type { Context } from 'koa';
import { FluxSystemFile, FLUX_SYSTEM_PATH } from '../../bootstrap/flux-system.js';
import { assembleBootstrapScript, renderBootstrap } from '../../bootstrap/script.js';
import { HttpError } from '../../lib/http-errors.js';
import type { Status } from '../../reconcile/status.js';
import { classify } from '../../reconcile/failure.js';
import { readStatus } from '../../reconcile/setup-status.js';
import { byName, clusterRecord, clusterSummary } from '../cluster-summary.js';
import type { ApiDeps } from '../deps.js';
import { CHALLENGE } from '../authn.js';
import { clusterParam, principalOf } from '../params.js';

/** Cluster listing, status, bootstrap URL and the bootstrap script itself. */
export function clusterRoutes(d: ApiDeps): Router {
  const r = new Router();
  const m = d.manager;
  const u = m.config.uuids;
  const manage = u.perm.manageClusters;
  const fluxSystem = new FluxSystemFile(m.repos);

  /** The cluster's status; 404 when neither a status nor a configuration entry exists. */
  const known = async (cluster: string): Promise<Status> => {
    const st = m.status.get(cluster);
    if (st) return st;
    if (
      await m.cdb.get(u.app.clusterConfig, cluster).catch((e) => {
        throw new HttpError(503, `the Config Store cannot be reached: ${(e as Error).message}`);
      })
    ) {
      return { phase: 'pending', ready: false };
    }
    throw new HttpError(404, `no edge cluster ${cluster}`);
  };
  const requireReady = (json: Status) => {
    const st = readStatus(json)!;
    if (!st.ready) throw new HttpError(409, `the cluster is not ready (phase ${st.phase})`, {}, { phase: st.phase });
  };

  r.get('/v1/cluster', async (ctx) => {
    const targets = await d.acl.targets(principalOf(ctx), manage);
    const all = targets.has(u.special.wildcard);
    ctx.body = m.status
      .clusters()
      .filter((id) => all || targets.has(id))
      .map((uuid) => clusterSummary(uuid, m.status.get(uuid)))
      .sort(byName);
  });

  /** A redeploy's failure as an answer: its reason, and 503 unless the cluster's own spec is at fault. */
  const redeployFailed = (cluster: string, e: unknown): HttpError => {
    const { reason, message } = classify(e);
    const failed = readStatus(m.status.get(cluster))?.phase === 'failed';
    return new HttpError(failed ? 409 : 503, `the redeploy failed: ${message}`, failed ? {} : { 'Retry-After': '5' }, {
      reason,
    });
  };

  r.post('/v1/cluster/redeploy', async (ctx) => {
    const targets = await d.acl.targets(principalOf(ctx), manage);
    const all = targets.has(u.special.wildcard);
    const clusters = m.status
      .clusters()
      .filter((id) => (all || targets.has(id)) && readStatus(m.status.get(id))?.phase !== 'deleting');
    ctx.status = 202;
    ctx.body = { queued: m.controller.redeployAll(clusters) };
  });

  r.post('/v1/cluster/:uuid/redeploy', async (ctx) => {
    const cluster = clusterParam(ctx);
    await d.acl.require(principalOf(ctx), manage, cluster, `redeploy cluster ${cluster}`);
    await known(cluster);
    ctx.body = await m.controller.redeploy(cluster).catch((e: unknown) => {
      throw redeployFailed(cluster, e);
    });
  });

  r.get('/v1/cluster/:uuid', async (ctx) => {
    const cluster = clusterParam(ctx);
    await d.acl.require(principalOf(ctx), manage, cluster, `see cluster ${cluster}`);
    ctx.body = clusterRecord(cluster, await known(cluster));
  });

  r.get('/v1/cluster/:uuid/status', async (ctx) => {
    const cluster = clusterParam(ctx);
    await d.acl.require(principalOf(ctx), manage, cluster, `see cluster ${cluster}`);
    ctx.body = await known(cluster);
  });

  r.post('/v1/cluster/:uuid/bootstrap-url', async (ctx) => {
    const cluster = clusterParam(ctx);
    await d.acl.require(principalOf(ctx), manage, cluster, `bootstrap cluster ${cluster}`);
    requireReady(await known(cluster));
    const { token, expires } = d.bootstrapTokens.issue(cluster);
    const url = new URL(`v1/cluster/${cluster}/bootstrap`, d.externalUrl().replace(/\/?$/, '/'));
    url.searchParams.set('token', token);
    ctx.set('Expires', expires.toUTCString());
    ctx.body = JSON.stringify(url.href);
    ctx.type = 'application/json';
  });

  r.get('/v1/cluster/:uuid/bootstrap', async (ctx: Context) => {
    const cluster = clusterParam(ctx);
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const v = d.bootstrapTokens.verify(token, cluster);
    if (!v.ok) {
      // Why a token failed (expired, forged, another cluster's) would tell
      // whoever holds it what to try next; the log keeps the reason.
      d.log.info({ cluster, reason: v.reason }, 'bootstrap token refused');
      throw new HttpError(
        401,
        `bootstrap token missing, invalid or expired; ask for a new URL with POST /v1/cluster/${cluster}/bootstrap-url`,
        CHALLENGE,
      );
    }
    const st = await known(cluster);
    requireReady(st);
    const spec = st.spec as { name: string; namespace: string };
    const [template, sc] = await Promise.all([m.templates.bootstrap(), m.templates.serviceConfig()]);
    if (template === undefined)
      throw new HttpError(503, `the Bootstrap script template entry ${u.app.bootstrapTemplate} does not exist`);
    const fluxSystemYaml = await fluxSystem.read(sc.repo.helm.uuid).catch((e: Error) => {
      throw new HttpError(503, `the shared Helm repo cannot be read from the Git server: ${e.message}`);
    });
    if (fluxSystemYaml === undefined) throw new HttpError(503, `the shared Helm repo has no ${FLUX_SYSTEM_PATH}`);
    const fp = m.config.factoryplus;
    const rendered = renderBootstrap(template, {
      name: spec.name,
      namespace: spec.namespace,
      realm: fp.realm,
      domain: fp.externalDomain,
      krbkeys: fp.krbkeysImage,
    });
    const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink: String(st.self_link ?? '') });
    // Read again: other fetches may have been counted while this one was assembled.
    const fetches = (readStatus(m.status.get(cluster))?.bootstrap?.fetches ?? 0) + 1;
    void m.status.update(cluster, { bootstrap: { fetches, lastFetch: (d.now?.() ?? new Date()).toISOString() } });
    d.metrics.bootstrapFetches.inc();
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    // One encoding to bytes here; a string would be measured and encoded again on the way out.
    ctx.body = Buffer.from(script, 'utf8');
  });

  return r;
}
