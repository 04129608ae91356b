import { at, SERVICE_CONFIG_FIELDS } from '../reconcile/service-config.js';
import type { Config } from '../config/types.js';
import { DirectoryClient } from '../factoryplus/directory.js';
import { FplusHttp, ServiceError, type Credentials } from '../factoryplus/http.js';
import { silentLogger } from '../lib/log.js';
import type { Json } from '../lib/merge-patch.js';
import { isUuid } from '../lib/uuid.js';
import { redact } from './format.js';
import { MqttProbeError, ping, probeMqtt, unreachableCause } from './probes.js';
import { entryProblem, renderProblem, type TemplateKind } from './templates.js';
import type { CheckName, CheckOptions, CheckResult } from './types.js';

type Outcome = { ok: true; detail: string } | { ok: false; detail: string; fix: string };

const pass = (detail: string): Outcome => ({ ok: true, detail });
const fail = (detail: string, fix: string): Outcome => ({ ok: false, detail, fix });

/** Thrown inside a check to end it with this failure. */
class Failed extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.detail);
  }
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

interface Located { url: string; source: string }

interface ServiceInfo { label: string; uuid: string; env: string; override: string | null }

/**
 * Runs the `check-config` checks in order; see `index.ts` for what each one
 * does. Never throws for a failed check: every problem is a result.
 */
export async function runChecks(config: Config, opts: CheckOptions = {}): Promise<CheckResult[]> {
  const log = opts.log ?? silentLogger;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const fp = config.factoryplus;
  const u = config.uuids;
  const factoryplusMode = fp.directoryUrl !== null;
  const directoryUrl = opts.directoryUrl ?? fp.directoryUrl ?? undefined;
  const creds: Credentials | undefined = opts.credentials
    ?? (fp.username && fp.password ? { username: fp.username, password: fp.password } : undefined);
  // The embedded broker speaks MQTT 3.1.1 only, as `serve` knows.
  const mqttProtocol: 4 | 5 = factoryplusMode ? fp.mqttProtocol : 4;
  const secrets = [opts.credentials?.password, fp.password].filter((s): s is string => typeof s === 'string' && s.length > 0);
  const account = creds ? `the Cluster Manager's account (${creds.username})` : "the Cluster Manager's account";

  const results: CheckResult[] = [];
  const passed = new Set<string>();

  const record = (name: CheckName, o: Outcome) => {
    const r: CheckResult = { name, ok: o.ok, detail: redact(o.detail, secrets) };
    if (!o.ok) r.fix = redact(o.fix, secrets);
    if (o.ok) passed.add(name);
    results.push(r);
    log.debug({ check: name, ok: r.ok }, r.detail);
  };
  const skip = (name: CheckName, needs: string) => {
    results.push({ name, ok: false, skipped: true, detail: `skipped: needs ${needs}` });
    log.debug({ check: name, needs }, 'check skipped');
  };
  const blocker = (needs: CheckName[]) => needs.find((n) => !passed.has(n));
  const check = async (name: CheckName, needs: CheckName[], fn: () => Promise<Outcome> | Outcome) => {
    const missing = blocker(needs);
    if (missing) return skip(name, missing);
    try {
      record(name, await fn());
    } catch (e) {
      record(name, e instanceof Failed ? e.outcome
        : fail(`unexpected error: ${(e as Error).message}`, 'run again with LOG_LEVEL=debug; if it persists this is a bug of check-config'));
    }
  };

  // 1. Configuration.
  await check('Configuration', [], () => {
    const where = opts.directoryUrl ? `Directory ${opts.directoryUrl}`
      : fp.directoryUrl ? `DIRECTORY_URL ${fp.directoryUrl}` : 'no DIRECTORY_URL: `serve` starts the embedded core';
    const parts = [`profile ${config.profile}`, factoryplusMode ? 'Factory+ mode' : 'embedded mode', where,
      `MQTT protocol ${mqttProtocol === 4 ? '3.1.1' : '5'}`];
    if (!creds) {
      if (!directoryUrl) return pass(`${parts.join(', ')}; the embedded core makes the service account`);
      const missing = [!fp.username && 'SERVICE_USERNAME', !fp.password && 'SERVICE_PASSWORD'].filter(Boolean).join(' and ');
      return fail(`${parts.join(', ')}; ${missing} ${missing.includes(' and ') ? 'are' : 'is'} not set`,
        "set SERVICE_USERNAME and SERVICE_PASSWORD to the Cluster Manager's service account");
    }
    return pass(`${parts.join(', ')}, account ${creds.username}`);
  });

  // 2. Directory: anything answering /ping there, without credentials.
  if (!directoryUrl) {
    skip('Directory', 'DIRECTORY_URL (embedded mode: `serve` starts its own core)');
  } else {
    await check('Directory', [], async () => {
      const p = await ping(directoryUrl, timeoutMs);
      if (p.kind === 'unreachable') {
        return fail(`cannot reach ${directoryUrl}: ${p.cause}`,
          'check DIRECTORY_URL and that the Directory is running and reachable from here');
      }
      if (p.status === 200 && p.service !== undefined && p.service !== u.service.directory) {
        return fail(`${directoryUrl} answered /ping as service ${p.service}, not as the Directory (${u.service.directory})`,
          "set DIRECTORY_URL to the Factory+ Directory's base URL");
      }
      if (p.status === 200 || p.status === 401) return pass(`${directoryUrl} answered`);
      return fail(`${directoryUrl} answered GET /ping with HTTP ${p.status}`,
        "set DIRECTORY_URL to the Factory+ Directory's base URL and check that the Directory is healthy");
    });
  }

  const http = new FplusHttp(creds ?? { username: '', password: '' }, { log, timeoutMs, retries: 0 });
  const dir = directoryUrl ? new DirectoryClient(http, directoryUrl) : undefined;

  // 3. Credentials: a token from the Directory.
  await check('Credentials', ['Configuration', 'Directory'], async () => {
    try {
      await http.token(new URL(directoryUrl!).origin);
      // Without credentials every Factory+ service looks alike; with them /ping tells which one this is.
      const res = await http.request<{ service?: unknown } | undefined>(withSlash(directoryUrl!), 'GET', 'ping', { accept: [404] });
      const service = res.status === 200 ? res.body?.service : undefined;
      if (typeof service === 'string' && service !== u.service.directory) {
        return fail(`${directoryUrl} accepted ${creds!.username} but is service ${service}, not the Directory (${u.service.directory})`,
          "set DIRECTORY_URL to the Factory+ Directory's base URL");
      }
      return pass(`the Directory issued a token to ${creds!.username}`);
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      if (e.status === 401 || e.status === 403) {
        return fail(`the Directory refused SERVICE_USERNAME/SERVICE_PASSWORD (account ${creds!.username}, HTTP ${e.status})`,
          "set SERVICE_USERNAME and SERVICE_PASSWORD to the Cluster Manager's service account and its current password");
      }
      if (e.status === 0) {
        return fail(`cannot reach ${directoryUrl} for a token: ${unreachableCause(e)}`, 'check that the Directory is running and reachable from here');
      }
      return fail(`the Directory answered POST /token with HTTP ${e.status}: ${e.message}`, "check the Directory's logs and its /token endpoint");
    }
  });

  // 4. The services, found through the Directory or an override.
  const locate = async (s: ServiceInfo): Promise<Located> => {
    if (s.override) return { url: withSlash(s.override), source: s.env };
    try {
      return { url: await dir!.serviceUrl(s.uuid), source: 'from the Directory' };
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      if (e.status === 404) {
        throw new Failed(fail(`the Directory has no URL for the ${s.label} (service ${s.uuid})`,
          `register the ${s.label} with the Directory, or set ${s.env}`));
      }
      throw new Failed(fail(`the Directory could not look up the ${s.label} (service ${s.uuid}): ${e.message}`,
        `check the Directory, or set ${s.env} to bypass it`));
    }
  };
  const serviceFailure = (s: ServiceInfo, where: Located, e: unknown, forbiddenFix: string): Outcome => {
    if (!(e instanceof ServiceError)) throw e;
    const place = `${where.url} (${where.source})`;
    if (e.status === 0) {
      return fail(`cannot reach ${place}: ${unreachableCause(e)}`, where.source === s.env
        ? `check ${s.env}: the ${s.label} must be running and reachable from here`
        : `check that the ${s.label} is running and reachable from here at the URL the Directory gives, or set ${s.env}`);
    }
    if (e.status === 401) {
      return fail(`the ${s.label} at ${place} refused the credentials of ${creds!.username}`,
        `the ${s.label} must accept the account: check SERVICE_USERNAME/SERVICE_PASSWORD and that the ${s.label} uses the same Auth`);
    }
    if (e.status === 403) return fail(`the ${s.label} at ${place} refused: ${e.message}`, forbiddenFix);
    return fail(`the ${s.label} at ${place} answered HTTP ${e.status}: ${e.message}`, `check the ${s.label}'s logs and that ${s.env} or the Directory's URL points at it`);
  };

  const services = {
    configdb: { label: 'Config Store', uuid: u.service.configdb, env: 'CONFIGDB_URL', override: fp.configdbUrl },
    auth: { label: 'Auth service', uuid: u.service.auth, env: 'AUTHN_URL', override: fp.authUrl },
    git: { label: 'Git server', uuid: u.service.git, env: 'GIT_URL', override: fp.gitUrl },
    mqtt: { label: 'MQTT broker', uuid: u.service.mqtt, env: 'MQTT_URL', override: fp.mqttUrl },
  } satisfies Record<string, ServiceInfo>;

  let configdb: Located | undefined;
  let serviceConfig: Json | undefined;
  await check('Config Store', ['Credentials'], async () => {
    const s = services.configdb;
    const where = await locate(s);
    try {
      const res = await http.request<Json>(where.url, 'GET', `v2/app/${u.app.serviceConfig}/object/${u.service.clusterManager}`, { accept: [404] });
      configdb = where;
      serviceConfig = res.status === 404 ? undefined : res.body;
      return pass(`${where.url} (${where.source}) answered a ServiceConfig read`);
    } catch (e) {
      return serviceFailure(s, where, e, `grant ReadConfig on the Service setup app (${u.app.serviceConfig}) to ${account}`);
    }
  });

  await check('Auth', ['Credentials'], async () => {
    const s = services.auth;
    const where = await locate(s);
    try {
      const res = await http.request<unknown>(where.url, 'GET', 'v2/whoami/uuid', { accept: [404] });
      const who = res.status === 200 && isUuid(res.body) ? `; the account is principal ${res.body}` : '';
      return pass(`${where.url} (${where.source}) answered${who}`);
    } catch (e) {
      return serviceFailure(s, where, e, `let ${account} use the Auth service`);
    }
  });

  let git: Located | undefined;
  await check('Git', ['Credentials'], async () => {
    const s = services.git;
    const where = await locate(s);
    try {
      await http.request<unknown>(where.url, 'GET', 'v1/status', { accept: [404] });
      git = where;
      return pass(`${where.url} (${where.source}) answered`);
    } catch (e) {
      return serviceFailure(s, where, e, `let ${account} use the Git server`);
    }
  });

  await check('MQTT', ['Credentials'], async () => {
    const s = services.mqtt;
    const where = await locate(s);
    const url = where.url.replace(/\/$/, '');
    try {
      await probeMqtt(url, creds!, mqttProtocol, timeoutMs);
      return pass(`${url} (${where.source}) accepted ${creds!.username} (MQTT ${mqttProtocol === 4 ? '3.1.1' : '5'})`);
    } catch (e) {
      if (!(e instanceof MqttProbeError)) throw e;
      if (e.refused) {
        return fail(`the broker at ${url} (${where.source}) refused the credentials of ${creds!.username}: ${e.message}`,
          'the broker must accept the service account: check SERVICE_USERNAME/SERVICE_PASSWORD and the broker\'s authentication');
      }
      if (e.protocol) {
        return fail(`the broker at ${url} (${where.source}) does not speak MQTT ${mqttProtocol === 4 ? '3.1.1' : '5'}: ${e.message}`,
          `set MQTT_PROTOCOL=${mqttProtocol === 4 ? 5 : 4}${mqttProtocol === 5 ? ' (MQTT 3.1.1, as the embedded broker speaks)' : ''}`);
      }
      return fail(`cannot connect to ${url} (${where.source}): ${e.message}`,
        `check that the MQTT broker is running and reachable from here${where.source === s.env ? ` (${s.env})` : `, or set ${s.env}`}; MQTT_PROTOCOL=${mqttProtocol} must be one the broker speaks (4 for MQTT 3.1.1)`);
    }
  });

  // 5. The ServiceConfig entry, as read by the Config Store check.
  const scName = `the Cluster Manager's ServiceConfig entry (${u.app.serviceConfig}/${u.service.clusterManager})`;
  const scFields = SERVICE_CONFIG_FIELDS.map(([f]) => f).join(', ');
  await check('ServiceConfig', ['Config Store'], () => {
    if (serviceConfig === undefined) {
      return fail(`${scName} does not exist`, `create it in the Config Store with ${scFields} (service-setup of a Factory+ installation does this)`);
    }
    const bad = SERVICE_CONFIG_FIELDS.filter(([path, ok]) => !ok(at(serviceConfig, path))).map(([path, , want]) => `${path} (${want})`);
    if (bad.length) return fail(`${scName} lacks ${bad.join(', ')}`, `add ${bad.length > 1 ? 'them' : 'it'} to the entry in the Config Store`);
    return pass(`${scName} has ${scFields}`);
  });

  // 6. Template entries: each exists and is well-formed, and together they render a sample cluster.
  await checkTemplates();

  async function checkTemplates() {
    const kinds: Array<{ kind: TemplateKind; name: CheckName; app: string; appName: string; obj: () => string; needs: CheckName[]; missingFix: (app: string, obj: string) => string }> = [
      { kind: 'flux', name: 'Flux template', app: u.app.fluxTemplate, appName: 'Flux template', obj: () => u.app.fluxTemplate, needs: ['Config Store'],
        missingFix: (app, obj) => `create the Flux template entry (app ${app}, object ${obj}) in the Config Store` },
      { kind: 'helmRelease', name: 'HelmRelease template', app: u.app.k8sTemplate, appName: 'K8s resource template', obj: () => u.resource.helmRelease, needs: ['Config Store'],
        missingFix: (app, obj) => `create the HelmRelease K8s resource template entry (app ${app}, object ${obj}) in the Config Store` },
      { kind: 'chart', name: 'Helm chart template', app: u.app.helmChartTemplate, appName: 'Helm chart template', obj: () => at(serviceConfig, 'helm.cluster') as string, needs: ['ServiceConfig'],
        missingFix: (app, obj) => `create the Helm chart template entry (app ${app}, object ${obj}), or set helm.cluster in the ServiceConfig to an existing chart` },
      { kind: 'bootstrap', name: 'Bootstrap template', app: u.app.bootstrapTemplate, appName: 'Bootstrap script', obj: () => u.app.bootstrapTemplate, needs: ['Config Store'],
        missingFix: (app, obj) => `create the Bootstrap script template entry (app ${app}, object ${obj}) in the Config Store` },
    ];
    type Read = { outcome: Outcome } | { value: Json };
    const reads = new Map<TemplateKind, Read>();
    await Promise.all(kinds.filter((k) => !blocker(k.needs)).map(async (k) => {
      const obj = k.obj();
      const entry = `the ${k.name} entry ${k.app}/${obj}`;
      try {
        const res = await http.request<Json>(configdb!.url, 'GET', `v2/app/${k.app}/object/${obj}`, { accept: [404] });
        reads.set(k.kind, res.status === 404
          ? { outcome: fail(`${entry} does not exist`, k.missingFix(k.app, obj)) }
          : { value: res.body });
      } catch (e) {
        reads.set(k.kind, { outcome: serviceFailure(services.configdb, configdb!, e,
          `grant ReadConfig on the ${k.appName} app (${k.app}) to ${account}`) });
      }
    }));

    // Each entry on its own.
    const ctx = { realm: fp.realm, domain: fp.externalDomain, krbkeysImage: fp.krbkeysImage };
    const problems = new Map<TemplateKind, string>();
    for (const k of kinds) {
      const r = reads.get(k.kind);
      if (r && 'value' in r) {
        const p = entryProblem(k.kind, r.value, ctx);
        if (p) problems.set(k.kind, p);
      }
    }
    // The three that make a cluster's repo, together.
    const value = (kind: TemplateKind) => { const r = reads.get(kind); return r && 'value' in r ? r.value : undefined; };
    const renderable = (['flux', 'helmRelease', 'chart'] as const).every((kind) => value(kind) !== undefined && !problems.has(kind));
    let rendered = false;
    if (renderable) {
      const gitBase = git?.url ?? 'https://git.example.invalid/';
      const helmRepo = (at(serviceConfig, 'repo.helm.uuid') as string | undefined) ?? '00000000-0000-4000-8000-000000000000';
      const r = renderProblem({ flux: value('flux')!, helmRelease: value('helmRelease')!, chart: value('chart')! }, gitBase, helmRepo);
      if (r) problems.set(r.kind, `does not render a sample cluster: ${r.message}`);
      else rendered = true;
    }
    const missingForRender = (['flux', 'helmRelease', 'chart'] as const)
      .filter((kind) => value(kind) === undefined || problems.has(kind))
      .map((kind) => kinds.find((k) => k.kind === kind)!.name);

    for (const k of kinds) {
      await check(k.name, k.needs, () => {
        const r = reads.get(k.kind)!;
        if ('outcome' in r) return r.outcome;
        const entry = `the ${k.name} entry ${k.app}/${k.obj()}`;
        const p = problems.get(k.kind);
        if (p) return fail(`${entry} ${p}`, `correct ${entry} in the Config Store`);
        if (k.kind === 'bootstrap') return pass(`${entry} exists and renders`);
        if (rendered) return pass(`${entry} exists and renders a sample cluster`);
        return pass(`${entry} exists and is well-formed (a sample render needs the ${missingForRender.join(' and ')})`);
      });
    }
  }

  // 7. The apps the Cluster Manager lists.
  await check('App access', ['Config Store'], async () => {
    const apps = [
      { name: 'Edge cluster configuration', uuid: u.app.clusterConfig },
      { name: 'Edge cluster setup status', uuid: u.app.setupStatus },
    ];
    const outcomes = await Promise.all(apps.map(async (a): Promise<Outcome> => {
      try {
        const res = await http.request<unknown>(configdb!.url, 'GET', `v2/app/${a.uuid}/object`, { accept: [404] });
        const n = Array.isArray(res.body) ? res.body.length : 0;
        return pass(`${a.name} (${n} ${n === 1 ? 'entry' : 'entries'})`);
      } catch (e) {
        if (e instanceof ServiceError && e.status === 403) {
          return fail(`the Config Store refused to list the ${a.name} app (${a.uuid})`,
            `grant ReadConfig on the ${a.name} app (${a.uuid}) to ${account}`);
        }
        return serviceFailure(services.configdb, configdb!, e, `grant ReadConfig on the ${a.name} app (${a.uuid}) to ${account}`);
      }
    }));
    const bad = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    if (bad.length === 0) return pass(`can read ${outcomes.map((o) => o.detail).join(' and ')}`);
    return fail(bad.map((o) => o.detail).join('; '), [...new Set(bad.map((o) => o.fix))].join('; '));
  });

  return results;
}
