import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Uuids } from '../config/types.js';
import type { AuthClient } from '../factoryplus/auth.js';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { ServiceError } from '../factoryplus/http.js';
import { canonicalJson, type Json } from '../lib/merge-patch.js';
import { REPO_README, renderClusterRepo, SpecError, validateSpec, type ClusterSpec, type SpecLimits } from '../repo/manifests.js';
import type { RepoPool } from '../repo/pool.js';
import { foreignAccount, foreignResources, recordedAccount, type OwnershipDeps } from './ownership.js';
import type { Status, StatusStore } from './status.js';
import { MissingEntry, type RenderInputs, type ServiceConfig, type TemplateCache } from './templates.js';

export type { ServiceConfig } from './templates.js';

export const FLUX_VERSION = '2.7.5';

export type Phase = 'pending' | 'address' | 'accounts' | 'repo' | 'ready' | 'deleting' | 'failed';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}


export interface CommissionDeps {
  cdb: ConfigDbClient;
  auth: AuthClient;
  gitBase: () => Promise<string>;
  uuids: Uuids;
  organisation: string;
  realm: string;
  status: StatusStore;
  templates: TemplateCache;
  repos: RepoPool;
  log: Logger;
  now?: () => Date;
  /** Bounds on a configuration entry, checked before any side effect (default: DEFAULT_SPEC_LIMITS). */
  limits?: SpecLimits;
}

/** The steps of commissioning, in order; `phase` names the one in progress. */
const STEPS: Phase[] = ['address', 'accounts', 'repo'];

const ACCOUNTS = [
  { role: 'flux', label: 'Edge flux', upn: 'op1flux' },
  { role: 'krbkeys', label: 'Edge krbkeys', upn: 'op1krbkeys' },
] as const;

export function condition(type: string, ok: boolean, reason: string, message: string, now: Date): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message, lastTransitionTime: now.toISOString() };
}

export function specHash(spec: ClusterSpec, inputs: RenderInputs): string {
  const templates = { ...inputs.templates, sc: inputs.sc };
  return createHash('sha256').update(canonicalJson({ spec, templates, flux: FLUX_VERSION } as unknown as Json)).digest('hex').slice(0, 16);
}

/** True when the recorded status says the cluster is already commissioned as `hash` describes. */
export function isCurrent(status: Status | undefined, hash: string): boolean {
  return status?.ready === true && status.specHash === hash && status.fluxVersion === FLUX_VERSION;
}

/**
 * The steps that make a configuration entry a commissioned cluster. Each step
 * is idempotent and recorded in the setup status before the next, so a crash
 * at any point resumes where it stopped, and an account's UUID is recorded
 * right after the account is created so a retry never makes a second one.
 */
export class Commissioner {
  private readonly now: () => Date;
  private readonly ownership: OwnershipDeps;

  constructor(private readonly d: CommissionDeps) {
    this.now = d.now ?? (() => new Date());
    this.ownership = { cdb: d.cdb, auth: d.auth, uuids: d.uuids, realm: d.realm, status: d.status };
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

  /**
   * Whether a cluster needs no work for this configuration entry, decided
   * from the recorded status and the cached templates alone: a resync of
   * thousands of ready clusters then costs no request per cluster.
   */
  async upToDate(cluster: string, config: unknown): Promise<boolean> {
    const status = this.d.status.get(cluster);
    if (status?.ready !== true) return false;
    try {
      const spec = validateSpec(config, this.d.limits);
      return isCurrent(status, specHash(spec, await this.d.templates.forChart(spec.chart)));
    } catch {
      return false;
    }
  }

  /** Brings one cluster to match its configuration entry. */
  async update(cluster: string, config: unknown): Promise<void> {
    const { cdb, uuids: u } = this.d;
    let spec: ClusterSpec;
    try {
      spec = validateSpec(config, this.d.limits);
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
    let inputs: RenderInputs;
    try {
      inputs = await this.d.templates.forChart(spec.chart);
    } catch (e) {
      if (e instanceof MissingEntry) return this.fail(cluster, e.reason, e.message);
      throw e;
    }
    const { sc } = inputs;
    const hash = specHash(spec, inputs);
    if (isCurrent(status, hash)) return;

    const name = spec.name;
    // An account recorded but not yet set up is set up further only if it
    // is this cluster's: otherwise its identity would be renamed and its
    // grants widened. Checked before the first step, so nothing is made.
    for (const acc of ACCOUNTS) {
      const rec = status[acc.role] as { uuid?: unknown; done?: boolean } | undefined;
      const uuid = recordedAccount(status, acc.role);
      if (uuid === undefined || rec?.done) continue;
      const foreign = await foreignAccount(this.ownership, cluster, name, acc, String(uuid).toLowerCase(), ACCOUNTS);
      if (foreign) return this.fail(cluster, 'ForeignAccount', foreign);
    }
    // Work already recorded for this same spec is not repeated: a retry
    // after a failure or a crash resumes at the step that was in progress.
    const resumeAt = status.specHash === hash ? STEPS.indexOf(status.phase as Phase) : -1;
    if (resumeAt < 0) {
      await this.patch(cluster, { spec: spec as unknown as Json, specHash: hash, phase: 'address', ready: false });
    }
    if (resumeAt <= 0) {
      await cdb.put(u.app.sparkplugAddress, cluster, { group_id: `${this.d.organisation}-${name}` });
      await this.patch(cluster, { phase: 'accounts' });
    }
    if (resumeAt <= 1) {
      for (const acc of ACCOUNTS) await this.account(cluster, name, acc, sc);
      await this.patch(cluster, { phase: 'repo' });
    }
    await cdb.put(u.app.gitRepoConfig, cluster, { path: `${sc.group.cluster.path}/${name}` });
    await cdb.addMember(sc.group.cluster.uuid, cluster);
    const gitBase = await this.d.gitBase();
    let rendered;
    try {
      rendered = renderClusterRepo({ uuid: cluster, spec, templates: inputs.templates, gitBase, helmRepo: sc.repo.helm.uuid });
    } catch (e) {
      if (e instanceof SpecError) return this.fail(cluster, e.reason, e.message);
      throw e;
    }
    const writer = await this.d.repos.writer(cluster);
    // A repo this cluster never pushed to is new and empty: no need to fetch it first.
    if (!(this.d.status.get(cluster)?.repo as { head?: string } | undefined)?.head) writer.assumeHead(null);
    const result = await writer.submit({
      message: 'Cluster flux update',
      apply: async (files) => {
        await files.write('README.md', REPO_README);
        for (const p of files.list('edo/cluster')) if (!rendered.files.has(p)) files.remove(p);
        for (const [p, text] of rendered.files) await files.write(p, text);
      },
    });
    await this.patch(cluster, {
      self_link: rendered.selfLink, repo: { head: result.head },
      ready: true, fluxVersion: FLUX_VERSION, phase: 'ready',
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
    const sc = await this.d.templates.serviceConfig();
    // Checked before anything is deleted, and again on every resumed run:
    // the status may have been written by someone else.
    const foreign = await foreignResources(this.ownership, cluster, status, ACCOUNTS);
    if (foreign) {
      this.d.log.warn({ cluster, reason: foreign }, 'cluster removal refused: its status names what is not its own');
      return this.fail(cluster, 'RemovalRefused', `nothing was removed: ${foreign}`);
    }
    if (status.phase !== 'deleting') await this.patch(cluster, { phase: 'deleting', ready: false });
    for (const acc of [...ACCOUNTS].reverse()) {
      const rec = recordedAccount(this.d.status.get(cluster), acc.role);
      const uuid = typeof rec === 'string' ? rec.toLowerCase() : undefined;
      if (!uuid) continue;
      await this.patch(cluster, { [acc.role]: { done: false } });
      await this.removeGrants(cluster, acc, uuid);
      await auth.deleteKerberos(uuid);
      // Once deleted the object is no longer ours, so a resumed removal must not touch it again.
      if (await cdb.registration(uuid)) {
        await cdb.removeMember(sc.group[acc.role].uuid, uuid);
        await cdb.delete(u.app.info, uuid);
        await this.deleteAccountObject(uuid);
      }
      await this.patch(cluster, { [acc.role]: null });
    }
    await cdb.delete(u.app.gitRepoConfig, cluster);
    await cdb.removeMember(sc.group.cluster.uuid, cluster);
    await cdb.delete(u.app.sparkplugAddress, cluster);
    await this.d.repos.forget(cluster);
    await this.patch(cluster, null);
    this.d.log.info({ cluster, name: (status.spec as { name?: string } | undefined)?.name }, 'cluster removed');
  }

  /**
   * Deletes the grants an account was given, by UUID. ACS Auth lists and
   * finds grants only for a caller holding Manage ACL on each grant's own
   * UUID, so a search by principal answers this service nothing there.
   * The UUIDs come from the status, recorded when the grants were added,
   * and, for the account's Git Pull grant, from adding it again: Auth
   * answers an identical grant with the UUID it already has. That adopts a
   * status written without grant UUIDs (by the original Cluster Manager, or
   * an older version of this one). A UUID is deleted only if Auth says the
   * grant is this account's on this cluster, so a status naming someone
   * else's grant deletes nothing of theirs.
   */
  private async removeGrants(cluster: string, acc: typeof ACCOUNTS[number], account: string): Promise<void> {
    const { auth } = this.d;
    const rec = this.d.status.get(cluster)?.[acc.role] as { grants?: unknown } | undefined;
    const grants = new Set(Array.isArray(rec?.grants) ? rec.grants.filter((g): g is string => typeof g === 'string') : []);
    if (acc.role === 'flux') grants.add(await auth.addGrant(this.pullGrant(account, cluster)));
    for (const g of grants) {
      const found = await auth.getGrant(g);
      if (!found) continue;
      if (found.principal !== account || found.target !== cluster) {
        this.d.log.warn({ cluster, account, grant: g }, 'recorded grant belongs to another principal or target; left in place');
        continue;
      }
      await auth.deleteGrant(g);
    }
    await this.patch(cluster, { [acc.role]: { grants: [] } });
  }

  private pullGrant(account: string, cluster: string) {
    return { principal: account, permission: this.d.uuids.perm.gitPull, target: cluster, plural: false };
  }

  /**
   * Deletes an account object; without Delete object on what it owns (a
   * stock ACS grant set) it marks the object deleted as the original does,
   * and failing that leaves it, rather than stop the teardown for ever.
   */
  private async deleteAccountObject(uuid: string): Promise<void> {
    const { cdb, uuids: u } = this.d;
    try {
      await cdb.deleteObject(uuid);
      return;
    } catch (e) {
      if (!(e instanceof ServiceError && (e.status === 403 || e.status === 409))) throw e;
    }
    try {
      await cdb.patch(u.app.registration, uuid, { deleted: true });
    } catch (e) {
      if (!(e instanceof ServiceError && (e.status === 403 || e.status === 404))) throw e;
      this.d.log.warn({ account: uuid }, 'account object left in place: no permission to delete it');
    }
  }

  /**
   * Creates the account object under the UUID already recorded in status, so
   * a crash at any point resumes with the same account (creating it again is
   * a no-op). Without Create specific object on the account class, as in a
   * stock ACS installation, it falls back to the original's order: create,
   * then record the new UUID straight away.
   */
  private async ensureAccountObject(cluster: string, role: string, uuid: string): Promise<string> {
    const { cdb, uuids: u } = this.d;
    try {
      await cdb.createObject(u.class.edgeAccount, uuid);
      return uuid;
    } catch (e) {
      if (!(e instanceof ServiceError && e.status === 403)) throw e;
    }
    if (await cdb.registration(uuid)) return uuid;
    const created = await cdb.createObject(u.class.edgeAccount);
    await this.patch(cluster, { [role]: { uuid: created } });
    return created;
  }

  private async account(cluster: string, name: string, acc: typeof ACCOUNTS[number], sc: ServiceConfig): Promise<void> {
    const { cdb, auth, uuids: u } = this.d;
    const current = this.d.status.get(cluster)?.[acc.role] as { uuid?: string; done?: boolean } | undefined;
    if (current?.done) return;
    let uuid = typeof current?.uuid === 'string' ? current.uuid.toLowerCase() : undefined;
    if (!uuid) {
      uuid = randomUUID();
      await this.patch(cluster, { [acc.role]: { uuid } });
    }
    uuid = await this.ensureAccountObject(cluster, acc.role, uuid);
    await cdb.put(u.app.info, uuid, { name: `${acc.label}: ${name}` });
    if (acc.role === 'flux') {
      // Recorded, because on ACS this service cannot find the grant again by searching (see removeGrants).
      const grant = await auth.addGrant(this.pullGrant(uuid, cluster));
      await this.patch(cluster, { [acc.role]: { grants: [grant] } });
    }
    await cdb.addMember(sc.group[acc.role].uuid, uuid);
    await auth.setKerberos(uuid, `${acc.upn}/${name}@${this.d.realm}`);
    await this.patch(cluster, { [acc.role]: { done: true } });
  }
}
