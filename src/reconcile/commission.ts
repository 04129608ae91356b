import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Uuids } from '../config/types.js';
import type { AuthClient } from '../factoryplus/auth.js';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import type { FplusHttp } from '../factoryplus/http.js';
import { canonicalJson, type Json } from '../lib/merge-patch.js';
import { REPO_README, renderClusterRepo, SpecError, validateSpec, type ClusterSpec } from '../repo/manifests.js';
import { RepoWriter } from '../repo/writer.js';
import type { Status, StatusStore } from './status.js';

export const FLUX_VERSION = '2.7.5';

export type Phase = 'pending' | 'address' | 'accounts' | 'repo' | 'ready' | 'deleting' | 'failed';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** The Cluster Manager's ServiceConfig entry. */
export interface ServiceConfig {
  group: { cluster: { path: string; uuid: string }; flux: { uuid: string }; krbkeys: { uuid: string } };
  helm: { cluster: string };
  repo: { helm: { uuid: string } };
}

export interface CommissionDeps {
  cdb: ConfigDbClient;
  auth: AuthClient;
  http: FplusHttp;
  gitBase: () => Promise<string>;
  uuids: Uuids;
  organisation: string;
  realm: string;
  gitEmail: string;
  status: StatusStore;
  serviceConfig: () => Promise<ServiceConfig>;
  checkoutsDir: string;
  log: Logger;
  now?: () => Date;
}

const ACCOUNTS = [
  { role: 'flux', label: 'Edge flux', upn: 'op1flux' },
  { role: 'krbkeys', label: 'Edge krbkeys', upn: 'op1krbkeys' },
] as const;

export function condition(type: string, ok: boolean, reason: string, message: string, now: Date): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message, lastTransitionTime: now.toISOString() };
}

function specHash(spec: ClusterSpec, templates: unknown): string {
  return createHash('sha256').update(canonicalJson({ spec, templates, flux: FLUX_VERSION })).digest('hex').slice(0, 16);
}

/**
 * The steps that make a configuration entry a commissioned cluster. Each step
 * is idempotent and recorded in the setup status before the next, so a crash
 * at any point resumes where it stopped, and an account's UUID is recorded
 * right after the account is created so a retry never makes a second one.
 */
export class Commissioner {
  private readonly writers = new Map<string, RepoWriter>();
  private readonly now: () => Date;

  constructor(private readonly d: CommissionDeps) {
    this.now = d.now ?? (() => new Date());
  }

  private writer(uuid: string, gitBase: string): RepoWriter {
    let w = this.writers.get(uuid);
    if (!w) {
      const origin = new URL(gitBase).origin;
      w = new RepoWriter(join(this.d.checkoutsDir, uuid), {
        url: new URL(`uuid/${uuid}`, gitBase).href,
        headers: async () => ({ Authorization: `Bearer ${await this.d.http.token(origin)}` }),
      }, { name: 'Edge deployment operator', email: this.d.gitEmail }, { log: this.d.log });
      this.writers.set(uuid, w);
    }
    return w;
  }

  private patch(cluster: string, p: Json): Promise<void> {
    return this.d.status.update(cluster, p);
  }

  private async fail(cluster: string, reason: string, message: string): Promise<void> {
    const st = this.d.status.get(cluster);
    const conds = (st?.conditions as unknown as Condition[] | undefined) ?? [];
    if (st?.phase === 'failed' && conds.some((c) => c.reason === reason && c.message === message)) return;
    await this.patch(cluster, { phase: 'failed', ready: false, conditions: [condition('Ready', false, reason, message, this.now())] as unknown as Json });
  }

  /** Brings one cluster to match its configuration entry. */
  async update(cluster: string, config: unknown): Promise<void> {
    const { cdb, uuids: u } = this.d;
    let spec: ClusterSpec;
    try {
      spec = validateSpec(config);
    } catch (e) {
      if (e instanceof SpecError) return this.fail(cluster, e.reason, e.message);
      throw e;
    }
    const status: Status = this.d.status.get(cluster) ?? {};
    const recorded = (status.spec as unknown as ClusterSpec | undefined)?.name;
    if (recorded && recorded !== spec.name && (status.flux || status.krbkeys || status.ready)) {
      const message = `cluster name is ${recorded}; renaming to ${spec.name} is not supported (accounts, repo path and Sparkplug group depend on it)`;
      const conds = (status.conditions as unknown as Condition[] | undefined) ?? [];
      if (!conds.some((c) => c.reason === 'NameChangeRefused' && c.message === message)) {
        await this.patch(cluster, { conditions: [...conds.filter((c) => c.type !== 'NameChange'),
          condition('NameChange', false, 'NameChangeRefused', message, this.now())] as unknown as Json });
      }
      return;
    }
    const sc = await this.d.serviceConfig();
    const chartUuid = spec.chart ?? sc.helm.cluster;
    const [flux, helmRelease, chart] = await Promise.all([
      cdb.get(u.app.fluxTemplate, u.app.fluxTemplate),
      cdb.get(u.app.k8sTemplate, u.resource.helmRelease),
      cdb.get(u.app.helmChartTemplate, chartUuid),
    ]);
    if (!flux) return this.fail(cluster, 'MissingTemplate', `the Flux template entry ${u.app.fluxTemplate} does not exist`);
    if (!helmRelease) return this.fail(cluster, 'MissingTemplate', `the HelmRelease template entry ${u.resource.helmRelease} does not exist`);
    if (!chart) return this.fail(cluster, 'UnknownChart', `Helm chart template ${chartUuid} does not exist`);
    const hash = specHash(spec, { flux, helmRelease, chart, sc });
    if (status.ready === true && status.specHash === hash && status.fluxVersion === FLUX_VERSION) return;

    const name = spec.name;
    await this.patch(cluster, { spec: spec as unknown as Json, phase: 'address', ready: false });
    await cdb.put(u.app.sparkplugAddress, cluster, { group_id: `${this.d.organisation}-${name}` });

    await this.patch(cluster, { phase: 'accounts' });
    for (const acc of ACCOUNTS) await this.account(cluster, name, acc, sc);

    await this.patch(cluster, { phase: 'repo' });
    await cdb.put(u.app.gitRepoConfig, cluster, { path: `${sc.group.cluster.path}/${name}` });
    await cdb.addMember(sc.group.cluster.uuid, cluster);
    const gitBase = await this.d.gitBase();
    let rendered;
    try {
      rendered = renderClusterRepo({ uuid: cluster, spec, templates: { flux, helmRelease, chart }, gitBase, helmRepo: sc.repo.helm.uuid });
    } catch (e) {
      if (e instanceof SpecError) return this.fail(cluster, e.reason, e.message);
      throw e;
    }
    const result = await this.writer(cluster, gitBase).submit({
      message: 'Cluster flux update',
      apply: async (files) => {
        await files.write('README.md', REPO_README);
        for (const p of files.list('edo/cluster')) if (!rendered.files.has(p)) files.remove(p);
        for (const [p, text] of rendered.files) await files.write(p, text);
      },
    });
    await this.patch(cluster, { self_link: rendered.selfLink, repo: { head: result.head } });
    await this.patch(cluster, {
      ready: true, fluxVersion: FLUX_VERSION, phase: 'ready', specHash: hash,
      conditions: [condition('Ready', true, 'Commissioned', `repo at ${result.head?.slice(0, 12) ?? 'empty'}`, this.now())] as unknown as Json,
    });
    this.d.log.info({ cluster, name }, 'cluster is ready');
  }

  /**
   * Tears down what setup made, in reverse order, recording progress so that
   * a crash part-way resumes: accounts (grants, identity, role membership,
   * the account object), repo configuration and membership, Sparkplug
   * address, then the status entry itself. The repo's history is kept by the
   * Git server, as in Factory+.
   */
  async remove(cluster: string): Promise<void> {
    const { cdb, auth, uuids: u } = this.d;
    const status = this.d.status.get(cluster);
    if (!status) return;
    const sc = await this.d.serviceConfig();
    if (status.phase !== 'deleting') await this.patch(cluster, { phase: 'deleting', ready: false });
    for (const acc of [...ACCOUNTS].reverse()) {
      const rec = this.d.status.get(cluster)?.[acc.role] as { uuid?: string } | string | undefined;
      const uuid = typeof rec === 'string' ? rec : rec?.uuid;
      if (!uuid) continue;
      await this.patch(cluster, { [acc.role]: { done: false } });
      for (const g of await auth.findGrants({ principal: uuid })) await auth.deleteGrant(g);
      await auth.deleteKerberos(uuid);
      // Once deleted the object is no longer ours, so a resumed removal must not touch it again.
      if (await cdb.registration(uuid)) {
        await cdb.removeMember(sc.group[acc.role].uuid, uuid);
        await cdb.delete(u.app.info, uuid);
        await cdb.deleteObject(uuid);
      }
      await this.patch(cluster, { [acc.role]: null });
    }
    await cdb.delete(u.app.gitRepoConfig, cluster);
    await cdb.removeMember(sc.group.cluster.uuid, cluster);
    await cdb.delete(u.app.sparkplugAddress, cluster);
    this.writers.delete(cluster);
    await this.patch(cluster, null);
    this.d.log.info({ cluster, name: (status.spec as { name?: string } | undefined)?.name }, 'cluster removed');
  }

  private async account(cluster: string, name: string, acc: typeof ACCOUNTS[number], sc: ServiceConfig): Promise<void> {
    const { cdb, auth, uuids: u } = this.d;
    const current = this.d.status.get(cluster)?.[acc.role] as { uuid?: string; done?: boolean } | undefined;
    if (current?.done) return;
    let uuid = current?.uuid;
    if (!uuid) {
      uuid = await cdb.createObject(u.class.edgeAccount);
      await this.patch(cluster, { [acc.role]: { uuid } });
    }
    await cdb.put(u.app.info, uuid, { name: `${acc.label}: ${name}` });
    if (acc.role === 'flux') await auth.addGrant({ principal: uuid, permission: u.perm.gitPull, target: cluster, plural: false });
    await cdb.addMember(sc.group[acc.role].uuid, uuid);
    await auth.setKerberos(uuid, `${acc.upn}/${name}@${this.d.realm}`);
    await this.patch(cluster, { [acc.role]: { done: true } });
  }
}
