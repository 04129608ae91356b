import type { Config } from '../config/types.js';
import { DirectoryClient } from '../factoryplus/directory.js';
import { FplusHttp, ServiceError, type Credentials } from '../factoryplus/http.js';
import { silentLogger } from '../lib/log.js';
import type { Json } from '../lib/merge-patch.js';
import { refusalText } from '../lib/mqtt-subscribe.js';
import { encodePayload, topic, SPARKPLUG_NAMESPACE } from '../lib/sparkplug/index.js';
import { isUuid } from '../lib/uuid.js';
import { at, SERVICE_CONFIG_FIELDS, validateServiceConfig } from '../reconcile/service-config.js';
import { EDGE_NODE_CONSUMER, grantText, MQTT_PERMISSIONS, permissionFor } from '../sparkplug/acl.js';
import { redact } from './format.js';
import { connectMqtt, MqttProbeError, ping, probePublish, probeSubscribe, unreachableCause } from './probes.js';
import { profileEvidence, PROFILE_SAMPLE } from './profile.js';
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

interface Located {
  url: string;
  source: string;
}

interface ServiceInfo {
  label: string;
  uuid: string;
  env: string;
  override: string | null;
}

/**
 * bdSeq of the NDEATH that probes the publish permission. Sparkplug bdSeq
 * values are 0..255, and a host application ends a node only on an NDEATH
 * whose bdSeq is its NBIRTH's (the ACS Directory and the embedded one
 * ignore any other as a stale will), so this one can end no session.
 */
const PROBE_BDSEQ = 256n;

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
  const creds: Credentials | undefined =
    opts.credentials ?? (fp.username && fp.password ? { username: fp.username, password: fp.password } : undefined);
  // The embedded broker speaks MQTT 3.1.1 only, as `serve` knows.
  const mqttProtocol: 4 | 5 = factoryplusMode ? fp.mqttProtocol : 4;
  const secrets = [opts.credentials?.password, fp.password].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
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
      record(
        name,
        e instanceof Failed
          ? e.outcome
          : fail(
              `unexpected error: ${(e as Error).message}`,
              'run again with LOG_LEVEL=debug; if it persists this is a bug of check-config',
            ),
      );
    }
  };

  // 1. Configuration.
  await check('Configuration', [], () => {
    const where = opts.directoryUrl
      ? `Directory ${opts.directoryUrl}`
      : fp.directoryUrl
        ? `DIRECTORY_URL ${fp.directoryUrl}`
        : 'no DIRECTORY_URL: `serve` starts the embedded core';
    const parts = [
      `profile ${config.profile}`,
      factoryplusMode ? 'Factory+ mode' : 'embedded mode',
      where,
      `MQTT protocol ${mqttProtocol === 4 ? '3.1.1' : '5'}`,
    ];
    if (!creds) {
      if (!directoryUrl) return pass(`${parts.join(', ')}; the embedded core makes the service account`);
      const missing = [!fp.username && 'SERVICE_USERNAME', !fp.password && 'SERVICE_PASSWORD']
        .filter(Boolean)
        .join(' and ');
      return fail(
        `${parts.join(', ')}; ${missing} ${missing.includes(' and ') ? 'are' : 'is'} not set`,
        "set SERVICE_USERNAME and SERVICE_PASSWORD to the Cluster Manager's service account",
      );
    }
    return pass(`${parts.join(', ')}, account ${creds.username}`);
  });

  // EXTERNAL_URL: edge clusters fetch their bootstrap script from URLs built on it.
  await check('External URL', [], () => {
    const url = config.http.externalUrl;
    if (url) return pass(`EXTERNAL_URL ${url}: bootstrap URLs are built on it`);
    if (!factoryplusMode) return pass('not set: in embedded mode bootstrap URLs use the listen address');
    return fail(
      `EXTERNAL_URL is not set: bootstrap URLs would name the listen address (http://${config.http.host}:${config.http.port}), which edge clusters do not reach`,
      'set EXTERNAL_URL to the URL edge clusters reach this service by (that of its Ingress or Service)',
    );
  });

  // 2. Directory: anything answering /ping there, without credentials.
  if (!directoryUrl) {
    skip('Directory', 'DIRECTORY_URL (embedded mode: `serve` starts its own core)');
  } else {
    await check('Directory', [], async () => {
      const p = await ping(directoryUrl, timeoutMs);
      if (p.kind === 'unreachable') {
        return fail(
          `cannot reach ${directoryUrl}: ${p.cause}`,
          'check DIRECTORY_URL and that the Directory is running and reachable from here',
        );
      }
      if (p.status === 200 && p.service !== undefined && p.service !== u.service.directory) {
        return fail(
          `${directoryUrl} answered /ping as service ${p.service}, not as the Directory (${u.service.directory})`,
          "set DIRECTORY_URL to the Factory+ Directory's base URL",
        );
      }
      if (p.status === 200 || p.status === 401) return pass(`${directoryUrl} answered`);
      return fail(
        `${directoryUrl} answered GET /ping with HTTP ${p.status}`,
        "set DIRECTORY_URL to the Factory+ Directory's base URL and check that the Directory is healthy",
      );
    });
  }

  const http = new FplusHttp(creds ?? { username: '', password: '' }, { log, timeoutMs, retries: 0 });
  const dir = directoryUrl ? new DirectoryClient(http, directoryUrl) : undefined;

  // 3. Credentials: a token from the Directory.
  await check('Credentials', ['Configuration', 'Directory'], async () => {
    try {
      await http.token(new URL(directoryUrl!).origin);
      // Without credentials every Factory+ service looks alike; with them /ping tells which one this is.
      const res = await http.request<{ service?: unknown } | undefined>(withSlash(directoryUrl!), 'GET', 'ping', {
        accept: [404],
      });
      const service = res.status === 200 ? res.body?.service : undefined;
      if (typeof service === 'string' && service !== u.service.directory) {
        return fail(
          `${directoryUrl} accepted ${creds!.username} but is service ${service}, not the Directory (${u.service.directory})`,
          "set DIRECTORY_URL to the Factory+ Directory's base URL",
        );
      }
      return pass(`the Directory issued a token to ${creds!.username}`);
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      if (e.status === 401 || e.status === 403) {
        return fail(
          `the Directory refused SERVICE_USERNAME/SERVICE_PASSWORD (account ${creds!.username}, HTTP ${e.status})`,
          "set SERVICE_USERNAME and SERVICE_PASSWORD to the Cluster Manager's service account and its current password",
        );
      }
      if (e.status === 0) {
        return fail(
          `cannot reach ${directoryUrl} for a token: ${unreachableCause(e)}`,
          'check that the Directory is running and reachable from here',
        );
      }
      return fail(
        `the Directory answered POST /token with HTTP ${e.status}: ${e.message}`,
        "check the Directory's logs and its /token endpoint",
      );
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
        throw new Failed(
          fail(
            `the Directory has no URL for the ${s.label} (service ${s.uuid})`,
            `register the ${s.label} with the Directory, or set ${s.env}`,
          ),
        );
      }
      throw new Failed(
        fail(
          `the Directory could not look up the ${s.label} (service ${s.uuid}): ${e.message}`,
          `check the Directory, or set ${s.env} to bypass it`,
        ),
      );
    }
  };
  const serviceFailure = (s: ServiceInfo, where: Located, e: unknown, forbiddenFix: string): Outcome => {
    if (!(e instanceof ServiceError)) throw e;
    const place = `${where.url} (${where.source})`;
    if (e.status === 0) {
      return fail(
        `cannot reach ${place}: ${unreachableCause(e)}`,
        where.source === s.env
          ? `check ${s.env}: the ${s.label} must be running and reachable from here`
          : `check that the ${s.label} is running and reachable from here at the URL the Directory gives, or set ${s.env}`,
      );
    }
    if (e.status === 401) {
      return fail(
        `the ${s.label} at ${place} refused the credentials of ${creds!.username}`,
        `the ${s.label} must accept the account: check SERVICE_USERNAME/SERVICE_PASSWORD and that the ${s.label} uses the same Auth`,
      );
    }
    if (e.status === 403) return fail(`the ${s.label} at ${place} refused: ${e.message}`, forbiddenFix);
    return fail(
      `the ${s.label} at ${place} answered HTTP ${e.status}: ${e.message}`,
      `check the ${s.label}'s logs and that ${s.env} or the Directory's URL points at it`,
    );
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
      const res = await http.request<Json>(
        where.url,
        'GET',
        `v2/app/${u.app.serviceConfig}/object/${u.service.clusterManager}`,
        { accept: [404] },
      );
      configdb = where;
      serviceConfig = res.status === 404 ? undefined : res.body;
      return pass(`${where.url} (${where.source}) answered a ServiceConfig read`);
    } catch (e) {
      return serviceFailure(
        s,
        where,
        e,
        `grant ReadConfig on the Service setup app (${u.app.serviceConfig}) to ${account}`,
      );
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

  let mqttAt: Located | undefined;
  await check('MQTT', ['Credentials'], async () => {
    const s = services.mqtt;
    const where = await locate(s);
    const url = where.url.replace(/\/$/, '');
    try {
      const client = await connectMqtt(url, creds!, mqttProtocol, timeoutMs);
      await client.endAsync().catch(() => undefined);
      mqttAt = { url, source: where.source };
      return pass(`${url} (${where.source}) accepted ${creds!.username} (MQTT ${mqttProtocol === 4 ? '3.1.1' : '5'})`);
    } catch (e) {
      if (!(e instanceof MqttProbeError)) throw e;
      if (e.refused) {
        return fail(
          `the broker at ${url} (${where.source}) refused the credentials of ${creds!.username}: ${e.message}`,
          "the broker must accept the service account: check SERVICE_USERNAME/SERVICE_PASSWORD and the broker's authentication",
        );
      }
      if (e.protocol) {
        return fail(
          `the broker at ${url} (${where.source}) does not speak MQTT ${mqttProtocol === 4 ? '3.1.1' : '5'}: ${e.message}`,
          `set MQTT_PROTOCOL=${mqttProtocol === 4 ? 5 : 4}${mqttProtocol === 5 ? ' (MQTT 3.1.1, as the embedded broker speaks)' : ''}`,
        );
      }
      return fail(
        `cannot connect to ${url} (${where.source}): ${e.message}`,
        `check that the MQTT broker is running and reachable from here${where.source === s.env ? ` (${s.env})` : `, or set ${s.env}`}; MQTT_PROTOCOL=${mqttProtocol} must be one the broker speaks (4 for MQTT 3.1.1)`,
      );
    }
  });

  /** Runs `fn` on a fresh connection of the account, and closes it. */
  const onBroker = async <T>(fn: (client: Awaited<ReturnType<typeof connectMqtt>>) => Promise<T>): Promise<T> => {
    let client: Awaited<ReturnType<typeof connectMqtt>>;
    try {
      client = await connectMqtt(mqttAt!.url, creds!, mqttProtocol, timeoutMs);
    } catch (e) {
      throw new Failed(
        fail(
          `cannot connect to ${mqttAt!.url} again: ${(e as Error).message}`,
          'check that the MQTT broker is running and reachable from here',
        ),
      );
    }
    try {
      return await fn(client);
    } finally {
      client.end(true);
    }
  };
  const noAnswer = (e: unknown, what: string): never => {
    if (!(e instanceof MqttProbeError)) throw e;
    throw new Failed(
      fail(
        `the broker at ${mqttAt!.url} gave no answer to the ${what}: ${e.message}`,
        "check the broker's logs; a broker that drops packets it refuses needs its ACL checked by hand",
      ),
    );
  };
  const who = () => `${creds!.username}`;

  // The Config Store's change notifications, as the change feed subscribes to them.
  await check('Notifications', ['MQTT'], async () => {
    const a = await configdbAddress();
    const topics = (['NBIRTH', 'NDATA', 'NDEATH'] as const).map((t) => topic(a.group, t, a.node));
    const refused = await onBroker((c) => probeSubscribe(c, topics, timeoutMs)).catch((e: unknown) =>
      noAnswer(e, 'subscription'),
    );
    if (refused.length) {
      return fail(
        `the broker at ${mqttAt!.url} refused ${who()} the subscription to ${refused.map(refusalText).join(', ')} (the Config Store's node ${a.group}/${a.node}, ${a.source}): ` +
          'the change feed gets no notifications, so changes are seen only at the periodic resync (RESYNC_SECONDS)',
        `${grantText(MQTT_PERMISSIONS.readNode)} (${a.group}/${a.node})${a.device ? `; in ACS the composite permission ${EDGE_NODE_CONSUMER.name} (${EDGE_NODE_CONSUMER.uuid}) on the Config Store's device ${a.device} includes it` : ''}`,
      );
    }
    return pass(`may subscribe to ${topics.join(', ')} (the Config Store's node, ${a.source})`);
  });

  // The service's own Sparkplug node: its command subscriptions, and publishing on its topics.
  await check('Sparkplug node', ['MQTT'], async () => {
    const { group, node } = nodeAddress();
    const filters = [
      topic(group, 'NCMD', node),
      `${SPARKPLUG_NAMESPACE}/${group}/DCMD/${node}/+`,
      ...(config.sparkplug.primaryHost ? [`spBv1.0/STATE/${config.sparkplug.primaryHost}`] : []),
    ];
    const ndeath = topic(group, 'NDEATH', node);
    return onBroker(async (client) => {
      const refused = await probeSubscribe(client, filters, timeoutMs).catch((e: unknown) =>
        noAnswer(e, 'subscription'),
      );
      if (refused.length) {
        return fail(
          `the broker at ${mqttAt!.url} refused ${who()} the subscription to ${refused.map(refusalText).join(', ')}: the Cluster Manager does not start without it`,
          [...new Set(refused.map((r) => grantText(permissionFor(r.topic))))].join('; '),
        );
      }
      const subscribed = `may subscribe to ${filters.join(', ')}`;
      if (await nodeOnline(group, node)) {
        // Its NBIRTH reached the Directory, so publishing works; a probe must not disturb a live node.
        return pass(`${subscribed}; publishing not probed: the Directory shows ${group}/${node} online`);
      }
      // Of the node's messages only NDEATH carries no seq: a host that sees
      // an NDATA or DBIRTH out of sequence asks the node to rebirth, while an
      // NDEATH for a node that is not alive, with a bdSeq no birth can have,
      // changes nothing for any host. The permission that allows it
      // (Participate as Node) allows every N* topic of the node.
      const now = Date.now();
      const probe = encodePayload({
        timestamp: now,
        metrics: [{ name: 'bdSeq', type: 'Int64', value: PROBE_BDSEQ, timestamp: now }],
      });
      const out = await probePublish(client, ndeath, probe, mqttProtocol, timeoutMs).catch((e: unknown) =>
        noAnswer(e, 'publish'),
      );
      if (out.kind === 'refused') {
        return fail(
          `the broker at ${mqttAt!.url} refused ${who()} a publish to ${ndeath}: ${out.why}`,
          grantText(MQTT_PERMISSIONS.participateAsNode),
        );
      }
      const how = out.certain ? 'accepted a publish to' : 'acknowledged a publish to';
      const caveat = out.certain ? '' : ' (MQTT 3.1.1 cannot tell a publish a broker drops from one it delivers)';
      return pass(`${subscribed}; the broker ${how} ${ndeath}${caveat}`);
    });
  });

  // 5. The ServiceConfig entry, as read by the Config Store check, against the schema the service uses.
  const scName = `the Cluster Manager's ServiceConfig entry (${u.app.serviceConfig}/${u.service.clusterManager})`;
  const scFields = SERVICE_CONFIG_FIELDS.map(([f]) => f).join(', ');
  await check('ServiceConfig', ['Config Store'], () => {
    if (serviceConfig === undefined) {
      return fail(
        `${scName} does not exist`,
        `create it in the Config Store with ${scFields} (service-setup of a Factory+ installation does this)`,
      );
    }
    const v = validateServiceConfig(serviceConfig);
    if (!v.ok)
      return fail(
        `${scName} lacks ${v.errors.join(', ')}`,
        `add ${v.errors.length > 1 ? 'them' : 'it'} to the entry in the Config Store`,
      );
    return pass(`${scName} has ${scFields}`);
  });

  // 6. Template entries: each exists and is well-formed, and together they render a sample cluster.
  await checkTemplates();

  async function checkTemplates() {
    const kinds: Array<{
      kind: TemplateKind;
      name: CheckName;
      app: string;
      appName: string;
      obj: () => string;
      needs: CheckName[];
      missingFix: (app: string, obj: string) => string;
    }> = [
      {
        kind: 'flux',
        name: 'Flux template',
        app: u.app.fluxTemplate,
        appName: 'Flux template',
        obj: () => u.app.fluxTemplate,
        needs: ['Config Store'],
        missingFix: (app, obj) => `create the Flux template entry (app ${app}, object ${obj}) in the Config Store`,
      },
      {
        kind: 'helmRelease',
        name: 'HelmRelease template',
        app: u.app.k8sTemplate,
        appName: 'K8s resource template',
        obj: () => u.resource.helmRelease,
        needs: ['Config Store'],
        missingFix: (app, obj) =>
          `create the HelmRelease K8s resource template entry (app ${app}, object ${obj}) in the Config Store`,
      },
      {
        kind: 'chart',
        name: 'Helm chart template',
        app: u.app.helmChartTemplate,
        appName: 'Helm chart template',
        obj: () => at(serviceConfig, 'helm.cluster') as string,
        needs: ['ServiceConfig'],
        missingFix: (app, obj) =>
          `create the Helm chart template entry (app ${app}, object ${obj}), or set helm.cluster in the ServiceConfig to an existing chart`,
      },
      {
        kind: 'bootstrap',
        name: 'Bootstrap template',
        app: u.app.bootstrapTemplate,
        appName: 'Bootstrap script',
        obj: () => u.app.bootstrapTemplate,
        needs: ['Config Store'],
        missingFix: (app, obj) =>
          `create the Bootstrap script template entry (app ${app}, object ${obj}) in the Config Store`,
      },
    ];
    type Read = { outcome: Outcome } | { value: Json };
    const reads = new Map<TemplateKind, Read>();
    await Promise.all(
      kinds
        .filter((k) => !blocker(k.needs))
        .map(async (k) => {
          const obj = k.obj();
          const entry = `the ${k.name} entry ${k.app}/${obj}`;
          try {
            const res = await http.request<Json>(configdb!.url, 'GET', `v2/app/${k.app}/object/${obj}`, {
              accept: [404],
            });
            reads.set(
              k.kind,
              res.status === 404
                ? { outcome: fail(`${entry} does not exist`, k.missingFix(k.app, obj)) }
                : { value: res.body },
            );
          } catch (e) {
            reads.set(k.kind, {
              outcome: serviceFailure(
                services.configdb,
                configdb!,
                e,
                `grant ReadConfig on the ${k.appName} app (${k.app}) to ${account}`,
              ),
            });
          }
        }),
    );

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
    const value = (kind: TemplateKind) => {
      const r = reads.get(kind);
      return r && 'value' in r ? r.value : undefined;
    };
    const renderable = (['flux', 'helmRelease', 'chart'] as const).every(
      (kind) => value(kind) !== undefined && !problems.has(kind),
    );
    let rendered = false;
    if (renderable) {
      const gitBase = git?.url ?? 'https://git.example.invalid/';
      const helmRepo =
        (at(serviceConfig, 'repo.helm.uuid') as string | undefined) ?? '00000000-0000-4000-8000-000000000000';
      const r = renderProblem(
        { flux: value('flux')!, helmRelease: value('helmRelease')!, chart: value('chart')! },
        gitBase,
        helmRepo,
      );
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
    const outcomes = await Promise.all(
      apps.map(async (a): Promise<Outcome> => {
        try {
          const res = await http.request<unknown>(configdb!.url, 'GET', `v2/app/${a.uuid}/object`, { accept: [404] });
          const n = Array.isArray(res.body) ? res.body.length : 0;
          return pass(`${a.name} (${n} ${n === 1 ? 'entry' : 'entries'})`);
        } catch (e) {
          if (e instanceof ServiceError && e.status === 403) {
            return fail(
              `the Config Store refused to list the ${a.name} app (${a.uuid})`,
              `grant ReadConfig on the ${a.name} app (${a.uuid}) to ${account}`,
            );
          }
          return serviceFailure(
            services.configdb,
            configdb!,
            e,
            `grant ReadConfig on the ${a.name} app (${a.uuid}) to ${account}`,
          );
        }
      }),
    );
    const bad = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    if (bad.length === 0) return pass(`can read ${outcomes.map((o) => o.detail).join(' and ')}`);
    return fail(bad.map((o) => o.detail).join('; '), [...new Set(bad.map((o) => o.fix))].join('; '));
  });

  // 8. Setup status entries under the app this profile expects, not the other profile's.
  await check('UUID profile', ['Config Store'], async () => {
    const other = config.profile === 'seed' ? 'acs' : 'seed';
    // The profiles swap the two apps: the other profile's setup status app is this one's Edge cluster status app.
    const read = async (app: string, name: string) => {
      try {
        const list = await http.request<unknown>(configdb!.url, 'GET', `v2/app/${app}/object`, { accept: [404] });
        const ids = (Array.isArray(list.body) ? list.body : []).filter(isUuid).slice(0, PROFILE_SAMPLE);
        return await Promise.all(
          ids.map(
            async (id) =>
              (await http.request<Json>(configdb!.url, 'GET', `v2/app/${app}/object/${id}`, { accept: [404] })).body,
          ),
        );
      } catch (e) {
        throw new Failed(
          serviceFailure(services.configdb, configdb!, e, `grant ReadConfig on the ${name} app (${app}) to ${account}`),
        );
      }
    };
    const [setupApp, edgeApp] = await Promise.all([
      read(u.app.setupStatus, 'Edge cluster setup status'),
      read(u.app.edgeStatus, 'Edge cluster status'),
    ]);
    const e = profileEvidence(setupApp, edgeApp);
    const wrong: string[] = [];
    if (e.setupUnderEdgeApp) {
      wrong.push(
        `${e.setupUnderEdgeApp} setup status ${e.setupUnderEdgeApp === 1 ? 'entry is' : 'entries are'} under ${u.app.edgeStatus}, the setup status app of profile ${other}`,
      );
    }
    if (e.edgeUnderSetupApp) {
      wrong.push(
        `${e.edgeUnderSetupApp} Edge cluster status ${e.edgeUnderSetupApp === 1 ? 'entry (hosts, kubeseal_cert) is' : 'entries (hosts, kubeseal_cert) are'} under ${u.app.setupStatus}, which profile ${config.profile} uses for the setup status`,
      );
    }
    const found = `${e.setupInSetupApp} setup status ${e.setupInSetupApp === 1 ? 'entry' : 'entries'} under ${u.app.setupStatus}, ${e.edgeInEdgeApp} Edge cluster status under ${u.app.edgeStatus}`;
    if (wrong.length) {
      const mixed = e.setupInSetupApp > 0 && e.setupUnderEdgeApp > 0;
      return fail(
        `profile ${config.profile}: ${wrong.join('; ')} (${found}, of at most ${PROFILE_SAMPLE} read per app)`,
        `set UUID_PROFILE=${other}, the profile the installation's entries were written with` +
          (mixed
            ? `; setup status entries exist under both apps, so a Cluster Manager has run with each profile: keep the profile of the installation's clusters and remove the setup status entries the other one wrote`
            : ''),
      );
    }
    return pass(`profile ${config.profile}: ${found}`);
  });

  return results;

  /** The Config Store's Sparkplug node as the change feed finds it: from the Directory, else the default. */
  async function configdbAddress(): Promise<{ group: string; node: string; source: string; device?: string }> {
    try {
      const { provider } = await dir!.provider(u.service.configdb);
      if (provider.device) {
        const a = await dir!.device(provider.device);
        if (a.group_id && a.node_id)
          return { group: a.group_id, node: a.node_id, source: 'from the Directory', device: provider.device };
      }
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
    }
    return {
      group: `${fp.organisation}-Service-Core`,
      node: 'Config_DB',
      source: 'the default: the Directory names no Sparkplug node for the Config Store',
    };
  }

  /** This service's Sparkplug address, as `serve` uses it. */
  function nodeAddress(): { group: string; node: string } {
    const a = config.sparkplug.address;
    if (a) {
      const [group, node] = a.split('/');
      return { group: group!, node: node! };
    }
    return { group: `${fp.organisation}-Service-Core`, node: 'Cluster_Manager' };
  }

  /** Whether the Directory shows the node online; false when it does not know it or cannot say. */
  async function nodeOnline(group: string, node: string): Promise<boolean> {
    try {
      const at = await http.request<{ uuid?: unknown }>(
        withSlash(directoryUrl!),
        'GET',
        `v1/address/${encodeURIComponent(group)}/${encodeURIComponent(node)}`,
        { accept: [404] },
      );
      if (at.status !== 200 || typeof at.body?.uuid !== 'string') return false;
      const d = await http.request<{ online?: unknown }>(
        withSlash(directoryUrl!),
        'GET',
        `v1/device/${encodeURIComponent(at.body.uuid)}`,
        { accept: [404] },
      );
      return d.status === 200 && d.body?.online === true;
    } catch {
      return false;
    }
  }
}
