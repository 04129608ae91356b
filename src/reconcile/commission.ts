import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Uuids } from '../config/types.js';
import type { AuthClient } from '../factoryplus/auth.js';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { ServiceError } from '../factoryplus/http.js';
import { canonicalJson, type Json } from '../lib/merge-patch.js';
import {
  REPO_README,
  renderClusterRepo,
  SpecError,
  validateSpec,
  type ClusterSpec,
  type SpecLimits,
} from '../repo/manifests.js';
import type { RepoPool } from '../repo/pool.js';
import type { FileSet } from '../repo/writer.js';
import { classify, ReasonedError } from './failure.js';
import { ClusterNames } from './names.js';
import { foreignAccount, foreignResources, recordedAccount, type OwnershipDeps } from './ownership.js';
import {
  clearConditions,
  getCondition,
  readStatus,
  sameConditions,
  setCondition,
  type Condition,
  type Phase,
  type SetupStatus,
} from './setup-status.js';
import type { StatusStore } from './status.js';
import {
  InvalidServiceConfig,
  MissingEntry,
  type RenderInputs,
  type ServiceConfig,
  type TemplateCache,
} from './templates.js';

export type { ServiceConfig } from './templates.js';

export const FLUX_VERSION = '2.7.5';

/** Makes the managed files exactly the rendered ones: written, and those no longer rendered removed. */
async function restoreManagedFiles(files: FileSet, rendered: ReadonlyMap<string, string>): Promise<void> {
  await files.write('README.md', REPO_README);
  for (const p of files.list('edo/cluster')) if (!rendered.has(p)) files.remove(p);
  for (const [p, text] of rendered) await files.write(p, text);
}

export type { Condition, Phase } from './setup-status.js';

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

const ACCOUNTS = [
  { role: 'flux', label: 'Edge flux', upn: 'op1flux' },
  { role: 'krbkeys', label: 'Edge krbkeys', upn: 'op1krbkeys' },
] as const;

/** What one run of the steps works from. */
interface StepContext {
  cluster: string;
  /** The spec as applied: under a refused rename, with the recorded name. */
  spec: ClusterSpec;
  inputs: RenderInputs;
  log: Logger;
  /** A redeploy: files are restored on the remote's current head, whatever was last seen. */
  force: boolean;
}

/**
 * A step of commissioning: the phase recorded while it is in progress, and
 * the condition type that names it when it fails (cleared when it succeeds).
 */
interface Step {
  phase: 'address' | 'accounts' | 'repo';
  condition: string;
  run: (c: StepContext) => Promise<void>;
}

/** The condition type naming the step a phase stands for, when a run fails there. */
const STEP_CONDITION: Record<Phase, string> = {
  pending: 'Reconcile',
  address: 'Address',
  accounts: 'Accounts',
  repo: 'Repo',
  ready: 'Reconcile',
  deleting: 'Teardown',
  failed: 'Reconcile',
};
const STEP_TYPES = [...new Set(Object.values(STEP_CONDITION))];

export function specHash(spec: ClusterSpec, inputs: RenderInputs): string {
  const templates = { ...inputs.templates, sc: inputs.sc };
  return createHash('sha256')
    .update(canonicalJson({ spec, templates, flux: FLUX_VERSION } as unknown as Json))
    .digest('hex')
    .slice(0, 16);
}

/** True when the recorded status says the cluster is already commissioned as `hash` describes. */
function isCurrent(status: SetupStatus | undefined, hash: string): boolean {
  // A ready status in another phase is one whose run was cut short: it is looked at again.
  return (
    status?.ready === true &&
    status.phase === 'ready' &&
    status.specHash === hash &&
    status.fluxVersion === FLUX_VERSION
  );
}

/** The spec as it is applied: a refused rename keeps the recorded name, and every other change applies. */
function appliedSpec(spec: ClusterSpec, st: SetupStatus | undefined): { spec: ClusterSpec; refusedRename?: string } {
  const recorded = st?.spec?.name;
  if (recorded && recorded !== spec.name && (st.flux || st.krbkeys || st.ready)) {
    return { spec: { ...spec, name: recorded }, refusedRename: spec.name };
  }
  return { spec };
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
  /** Who holds which name; filled from the recorded statuses on first use. */
  private names: ClusterNames | undefined;
  /** Called with the clusters waiting for a name that has just been given up. */
  onNameReleased?: (waiting: string[]) => void;

  private readonly steps: Step[] = [
    { phase: 'address', condition: 'Address', run: (c) => this.address(c) },
    { phase: 'accounts', condition: 'Accounts', run: (c) => this.accounts(c) },
    { phase: 'repo', condition: 'Repo', run: (c) => this.repo(c) },
  ];

  constructor(private readonly d: CommissionDeps) {
    this.now = d.now ?? (() => new Date());
    this.ownership = { cdb: d.cdb, auth: d.auth, uuids: d.uuids, realm: d.realm, status: d.status };
  }

  private patch(cluster: string, p: Json): Promise<void> {
    return this.d.status.update(cluster, p);
  }

  private read(cluster: string): SetupStatus | undefined {
    return readStatus(this.d.status.get(cluster));
  }

  /** Log lines about a cluster name it as well as its UUID. */
  private logFor(cluster: string, name?: string): Logger {
    return this.d.log.child({ cluster, name: name ?? this.read(cluster)?.spec?.name ?? null });
  }

  private claims(): ClusterNames {
    if (!this.names) {
      this.names = new ClusterNames();
      for (const cluster of this.d.status.clusters()) {
        const st = this.read(cluster);
        // A cluster that failed for want of its name holds none.
        if (st?.spec?.name && getCondition(st, 'Ready')?.reason !== 'NameConflict')
          this.names.claim(cluster, st.spec.name);
      }
    }
    return this.names;
  }

  /** The conditions of `cluster` changed by `fn`, as a patch (nothing when unchanged). */
  private conditionsPatch(cluster: string, fn: (c: Condition[]) => Condition[]): { conditions?: Json } {
    const before = this.read(cluster)?.conditions ?? [];
    const after = fn(before);
    return sameConditions(before, after) && before.every((c, i) => c.lastTransitionTime === after[i].lastTransitionTime)
      ? {}
      : { conditions: after as unknown as Json };
  }

  /** A spec the cluster cannot be commissioned with: `failed`, `Ready=False` with the reason, until the entry changes. */
  private async fail(cluster: string, reason: string, message: string): Promise<void> {
    const st = this.read(cluster);
    const ready = getCondition(st, 'Ready');
    if (st?.phase === 'failed' && ready?.reason === reason && ready.message === message) return;
    const now = this.now();
    this.logFor(cluster).warn({ reason, err: message }, 'cluster cannot be commissioned');
    await this.patch(cluster, {
      phase: 'failed',
      ready: false,
      conditions: setCondition(
        clearConditions(st?.conditions ?? [], ...STEP_TYPES),
        {
          type: 'Ready',
          status: 'False',
          reason,
          message,
        },
        now,
      ) as unknown as Json,
    });
  }

  /**
   * A run that threw: the step in progress (by the recorded phase) gets a
   * condition with the reason and the cause, how many attempts failed in a
   * row and when the next is due, and so does `Ready`. The phase is kept, so
   * the next attempt resumes there.
   */
  async recordFailure(cluster: string, error: unknown, attempts: number, retryInMs: number | undefined): Promise<void> {
    const st = this.read(cluster);
    const { reason, message } = classify(error);
    const now = this.now();
    const detail = {
      reason,
      message,
      attempts,
      lastAttempt: now.toISOString(),
      ...(retryInMs === undefined ? {} : { nextAttempt: new Date(now.getTime() + retryInMs).toISOString() }),
    };
    const step = STEP_CONDITION[st?.phase ?? 'pending'];
    let conditions = setCondition(st?.conditions ?? [], { type: step, status: 'False', ...detail }, now);
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', ...detail }, now);
    this.logFor(cluster).warn({ step, reason, err: message, attempts, retryInMs }, 'reconcile step failed');
    await this.patch(cluster, {
      ...(st ? {} : { phase: 'pending', ready: false }),
      conditions: conditions as unknown as Json,
    });
  }

  /**
   * Whether a cluster needs no work for this configuration entry, decided
   * from the recorded status and the cached templates alone: a resync of
   * thousands of ready clusters then costs no request per cluster.
   */
  async upToDate(cluster: string, config: unknown): Promise<boolean> {
    const st = this.read(cluster);
    if (st?.ready !== true) return false;
    try {
      const { spec, refusedRename } = appliedSpec(validateSpec(config, this.d.limits), st);
      if (refusedRename && getCondition(st, 'NameChange')?.message.indexOf(refusedRename) === -1) return false;
      return isCurrent(st, specHash(spec, await this.d.templates.forChart(spec.chart)));
    } catch {
      return false;
    }
  }

  /**
   * Brings one cluster to match its configuration entry. With `force` (a
   * redeploy) the templates are read again and the repo step runs even when
   * nothing changed; the answer is the repo's head after it.
   */
  async update(
    cluster: string,
    config: unknown,
    opts: { force?: boolean; rereadTemplates?: boolean } = {},
  ): Promise<{ head: string | null } | undefined> {
    let requested: ClusterSpec;
    try {
      requested = validateSpec(config, this.d.limits);
    } catch (e) {
      if (e instanceof SpecError) return void (await this.fail(cluster, e.reason, e.message));
      throw e;
    }
    const st = this.read(cluster);
    const { spec, refusedRename } = appliedSpec(requested, st);
    const log = this.logFor(cluster, spec.name);
    // A refused rename is said once, and blocks nothing else: the spec applies under the recorded name.
    const now = this.now();
    const rename = this.conditionsPatch(cluster, (c) =>
      refusedRename === undefined
        ? clearConditions(c, 'NameChange')
        : setCondition(
            c,
            {
              type: 'NameChange',
              status: 'False',
              reason: 'NameChangeRefused',
              message: `cluster name is ${spec.name}; renaming to ${refusedRename} is not supported (accounts, repo path and Sparkplug group depend on it)`,
            },
            now,
          ),
    );
    if (rename.conditions) await this.patch(cluster, rename);

    if (opts.rereadTemplates) this.d.templates.invalidate();
    let inputs: RenderInputs;
    try {
      inputs = await this.d.templates.forChart(spec.chart);
    } catch (e) {
      if (e instanceof MissingEntry || e instanceof InvalidServiceConfig)
        return void (await this.fail(cluster, e.reason, e.message));
      throw e;
    }
    const hash = specHash(spec, inputs);
    const current = this.read(cluster);
    if (isCurrent(current, hash) && !opts.force) return { head: current?.repo?.head ?? null };

    // Before anything is made: the name must be free, and recorded accounts this cluster's own.
    const holder = this.claims().claim(cluster, spec.name);
    if (holder !== undefined) {
      const holderName = this.read(holder)?.spec?.name ?? spec.name;
      return void (await this.fail(
        cluster,
        'NameConflict',
        `the name ${spec.name} is held by cluster ${holder} (${holderName}); names are compared ignoring case and punctuation, as Kubernetes names are made`,
      ));
    }
    for (const acc of ACCOUNTS) {
      const rec = current?.[acc.role];
      if (rec?.uuid === undefined || rec.done) continue;
      const foreign = await foreignAccount(this.ownership, cluster, spec.name, acc, rec.uuid.toLowerCase(), ACCOUNTS);
      if (foreign) return void (await this.fail(cluster, 'ForeignAccount', foreign));
    }

    // Work already recorded for this same spec is not repeated: a retry
    // after a failure or a crash resumes at the step that was in progress,
    // and a forced redeploy of a commissioned cluster runs the repo step.
    let resumeAt = current?.specHash === hash ? this.steps.findIndex((s) => s.phase === current.phase) : -1;
    if (opts.force && current?.specHash === hash && current.ready) resumeAt = this.steps.length - 1;
    if (resumeAt < 0) {
      resumeAt = 0;
      await this.patch(cluster, {
        spec: spec as unknown as Json,
        specHash: hash,
        phase: 'address',
        ready: false,
        // As a Flux controller marks an object it has started on: Ready is
        // Unknown while the steps run, so the history says a new attempt began.
        ...this.conditionsPatch(cluster, (c) =>
          setCondition(
            c,
            { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: 'commissioning the current spec' },
            this.now(),
          ),
        ),
      });
    }
    const ctx: StepContext = { cluster, spec, inputs, log, force: opts.force === true };
    for (const [i, step] of this.steps.entries()) {
      if (i < resumeAt) continue;
      await step.run(ctx);
      const next = this.steps[i + 1]?.phase;
      // The step's own failure condition goes when it succeeds.
      const cleared = this.conditionsPatch(cluster, (c) => clearConditions(c, step.condition));
      if (next) await this.patch(cluster, { phase: next, ...cleared });
      else if (cleared.conditions) await this.patch(cluster, cleared);
    }
    const head = this.read(cluster)?.repo?.head ?? null;
    await this.patch(cluster, {
      ready: true,
      fluxVersion: FLUX_VERSION,
      phase: 'ready',
      ...this.conditionsPatch(cluster, (c) =>
        setCondition(
          clearConditions(c, ...STEP_TYPES),
          {
            type: 'Ready',
            status: 'True',
            reason: 'Commissioned',
            message: `repo at ${head?.slice(0, 12) ?? 'empty'}`,
            observedSpecHash: hash,
          },
          this.now(),
        ),
      ),
    });
    log.info({ head }, opts.force ? 'cluster redeployed' : 'cluster is ready');
    return { head };
  }

  /**
   * A repo that moved outside the service (a hand edit, a push, a
   * force-push): the managed files are put back as they should be, in one
   * commit on top of whatever is there now, and `by-hand/` and every other
   * file are left as they are. History that no longer holds the recorded
   * head was rewritten: that is said, with both heads, in `RepoHistory`.
   */
  async repairDrift(
    cluster: string,
    config: unknown,
    seen: { recorded: string; remote: string | null },
  ): Promise<void> {
    const writer = await this.d.repos.writer(cluster);
    const { head, contains } = await writer.history(seen.recorded);
    const log = this.logFor(cluster);
    const now = this.now();
    const rewritten = !contains;
    await this.patch(cluster, {
      repo: { head },
      ...this.conditionsPatch(cluster, (c) =>
        rewritten
          ? setCondition(
              c,
              {
                type: 'RepoHistory',
                status: 'False',
                reason: 'RepoRewritten',
                message: `the repo's history was rewritten: the recorded head ${seen.recorded} is not in the history of ${head ?? 'an empty branch'}; the managed files were restored on top`,
              },
              now,
            )
          : clearConditions(c, 'RepoHistory'),
      ),
    });
    log.warn(
      { recorded: seen.recorded, remote: head, rewritten },
      'cluster repo moved outside the service; restoring its managed files',
    );
    await this.update(cluster, config, { force: true });
  }

  /** Step: the cluster's Sparkplug address. */
  private async address({ cluster, spec }: StepContext): Promise<void> {
    await this.d.cdb.put(this.d.uuids.app.sparkplugAddress, cluster, {
      group_id: `${this.d.organisation}-${spec.name}`,
    });
  }

  /** Step: the flux and krbkeys accounts. */
  private async accounts({ cluster, spec, inputs }: StepContext): Promise<void> {
    for (const acc of ACCOUNTS) await this.account(cluster, spec.name, acc, inputs.sc);
  }

  /** Step: the repo's configuration and group, and its managed files rendered and pushed. */
  private async repo({ cluster, spec, inputs, force }: StepContext): Promise<void> {
    const { cdb, uuids: u } = this.d;
    const { sc } = inputs;
    await cdb.put(u.app.gitRepoConfig, cluster, { path: `${sc.group.cluster.path}/${spec.name}` });
    await cdb.addMember(sc.group.cluster.uuid, cluster);
    const gitBase = await this.d.gitBase();
    let rendered;
    try {
      rendered = renderClusterRepo({
        uuid: cluster,
        spec,
        templates: inputs.templates,
        gitBase,
        helmRepo: sc.repo.helm.uuid,
      });
    } catch (e) {
      if (e instanceof SpecError) throw new ReasonedError(e.reason, e.message);
      throw e;
    }
    const writer = await this.d.repos.writer(cluster);
    // A repo this cluster never pushed to is new and empty: no need to fetch it first.
    if (!this.read(cluster)?.repo?.head) writer.assumeHead(null);
    const result = await writer.submit(
      { message: 'Cluster flux update', apply: (files) => restoreManagedFiles(files, rendered.files) },
      { fresh: force },
    );
    await this.patch(cluster, { self_link: rendered.selfLink, repo: { head: result.head } });
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
    const log = this.logFor(cluster);
    const sc = await this.d.templates.serviceConfig();
    // Checked before anything is deleted, and again on every resumed run:
    // the status may have been written by someone else.
    const foreign = await foreignResources(this.ownership, cluster, status, ACCOUNTS);
    if (foreign) {
      log.warn({ reason: foreign }, 'cluster removal refused: its status names what is not its own');
      return this.fail(cluster, 'RemovalRefused', `nothing was removed: ${foreign}`);
    }
    if (status.phase !== 'deleting') {
      await this.patch(cluster, {
        phase: 'deleting',
        ready: false,
        ...this.conditionsPatch(cluster, (c) => clearConditions(c, ...STEP_TYPES)),
      });
    }
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
    this.releaseName(cluster);
    log.info('cluster removed');
  }

  /** Gives up the cluster's name, and tells who waited for it. */
  private releaseName(cluster: string): void {
    const key = this.names?.release(cluster);
    if (key === undefined) return;
    const waiting = this.d.status.clusters().filter((c) => {
      const st = this.read(c);
      return getCondition(st, 'Ready')?.reason === 'NameConflict';
    });
    if (waiting.length) this.onNameReleased?.(waiting);
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
  private async removeGrants(cluster: string, acc: (typeof ACCOUNTS)[number], account: string): Promise<void> {
    const { auth } = this.d;
    const rec = this.d.status.get(cluster)?.[acc.role] as { grants?: unknown } | undefined;
    const grants = new Set(
      Array.isArray(rec?.grants) ? rec.grants.filter((g): g is string => typeof g === 'string') : [],
    );
    if (acc.role === 'flux') grants.add(await auth.addGrant(this.pullGrant(account, cluster)));
    for (const g of grants) {
      const found = await auth.getGrant(g);
      if (!found) continue;
      if (found.principal !== account || found.target !== cluster) {
        this.logFor(cluster).warn(
          { account, grant: g },
          'recorded grant belongs to another principal or target; left in place',
        );
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

  private async account(
    cluster: string,
    name: string,
    acc: (typeof ACCOUNTS)[number],
    sc: ServiceConfig,
  ): Promise<void> {
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
