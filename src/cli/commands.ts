/**
 * The `cluster-manager` client commands, on commander. Each command resolves
 * a cluster by name or UUID, makes its calls, and prints either JSON (with
 * `--json`, for scripts) or text for people; the exit code says how it went.
 */
import { readFileSync, statSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from '../config/index.js';
import { MAX_SECRET_BYTES } from '../sealing/limits.js';
import { ApiClient, ConfigStoreClient, type ClusterUuids } from './client.js';
import { resolveConnection, writeToken, type ConnectionOptions, type Env } from './connection.js';
import { CliError, EXIT } from './exit.js';
import { clusterList, painter, relative, resealText, secretList, statusText, type Paint } from './format.js';
import { watchStatus } from './watch.js';

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  stdin: AsyncIterable<Buffer | string>;
  env: Env;
  now: () => number;
}

/** The service's own commands, which run in this process rather than talk to one. */
export const SERVER_COMMANDS = {
  serve: 'run the Cluster Manager (default); without DIRECTORY_URL it first starts the embedded Factory+ core',
  core: 'run only the embedded Factory+ core, for a Cluster Manager in Factory+ mode',
  'check-config': 'check the configuration and every dependency and say what to fix',
} as const;
export type ServerCommand = keyof typeof SERVER_COMMANDS;

interface GlobalOptions extends ConnectionOptions {
  json?: boolean;
}

const SCOPES = ['strict', 'namespace-wide', 'cluster-wide'];

/** `NAMESPACE/SECRET` as the two parts the API takes. */
function secretRef(s: string): { namespace: string; name: string } {
  const m = /^([^/]+)\/([^/]+)$/.exec(s);
  if (!m) throw new CliError(`${JSON.stringify(s)} is not NAMESPACE/SECRET`, EXIT.usage);
  return { namespace: m[1], name: m[2] };
}

/** The UUIDs of the class and app a cluster is made with, as the service's UUID profile has them. */
function clusterUuids(env: Env): ClusterUuids {
  const only: Env = {};
  for (const k of ['UUID_PROFILE', 'CONFIG_FILE']) if (env[k] !== undefined) only[k] = env[k];
  const u = loadConfig({ env: only as NodeJS.ProcessEnv }).uuids;
  return {
    configdbService: u.service.configdb,
    edgeClusterClass: u.class.edgeCluster,
    clusterConfigApp: u.app.clusterConfig,
  };
}

/** At most `max` bytes from a stream: a value larger than the service takes is refused before it is all held. */
async function readLimited(stream: AsyncIterable<Buffer | string>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > max) throw new CliError(`${what} is over ${max} bytes, the most one value may be`);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function readValueFile(path: string): Buffer {
  try {
    if (statSync(path).size > MAX_SECRET_BYTES)
      throw new CliError(`${path} is over ${MAX_SECRET_BYTES} bytes, the most one value may be`);
    return readFileSync(path);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`, EXIT.usage);
  }
}

function buildProgram(io: Io, runServer: (c: ServerCommand) => Promise<void>): Command {
  const program = new Command('cluster-manager');
  const out = (s: string) => io.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  const paint: Paint = painter(io.stdout.isTTY, io.env);

  program
    .description('The Factory+ Cluster Manager, and a client of its HTTP API that names clusters by name or UUID.')
    .option('--url <url>', 'the Cluster Manager (default: CLUSTER_MANAGER_URL, else the embedded default)')
    .option('--user <name>', 'user to authenticate as (default: CLUSTER_MANAGER_USER)')
    .option('--password <password>', 'password (default: CLUSTER_MANAGER_PASSWORD)')
    .option(
      '--directory <url>',
      'the Directory, to reach the Config Store for create and delete (default: DIRECTORY_URL)',
    )
    .option('--json', 'print JSON for scripts instead of text')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  for (const [name, description] of Object.entries(SERVER_COMMANDS))
    program
      .command(name)
      .description(description)
      .action(() => runServer(name as ServerCommand));

  /** A command's global options, its connection and its API client. */
  const ctx = (cmd: Command) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const conn = resolveConnection(g, io.env, io.now());
    return { g, conn, api: new ApiClient(conn) };
  };
  const print = (g: GlobalOptions, value: unknown, text: () => string) => out(g.json ? JSON.stringify(value) : text());

  const client = (name: string, description: string) => program.command(name).description(description).exitOverride();

  client('ls', 'list the clusters you may manage: name, phase, ready, reason, edge health, secrets').action(
    async (_o, cmd: Command) => {
      const { g, api } = ctx(cmd);
      const list = await api.list();
      // The list has no secret count; each status has, read a few at a time.
      const rows = [...list] as Array<(typeof list)[number] & { secrets?: number | null }>;
      for (let i = 0; i < rows.length; i += 8)
        await Promise.all(
          rows.slice(i, i + 8).map(async (c) => {
            c.secrets = await api.status(c.uuid).then(
              (s) => s.secrets?.count ?? 0,
              () => null,
            );
          }),
        );
      print(g, rows, () => clusterList(rows, paint));
    },
  );

  client('status', "show a cluster's setup status: phase, conditions, attempts, next attempt")
    .argument('<cluster>', 'cluster name or UUID')
    .option('-w, --watch', 'follow changes live (GET /v1/events) until the cluster is ready or failed')
    .option('--timeout <seconds>', 'with --watch, give up after this long (exit 1)', (v) => Number(v))
    .action(async (cluster: string, o: { watch?: boolean; timeout?: number }, cmd: Command) => {
      const { g, api } = ctx(cmd);
      if (!o.watch) {
        const c = await api.resolve(cluster);
        const s = await api.status(c.uuid);
        print(g, { uuid: c.uuid, ...s }, () => statusText(c.name, c.uuid, s, io.now(), paint));
        return;
      }
      await watchStatus(api, cluster, o.timeout, {
        out,
        note: (s) => io.stderr.write(`cluster-manager: ${s}\n`),
        now: io.now,
        paint,
        json: !!g.json,
      });
    });

  client('create', 'create a cluster: an Edge cluster object and its configuration entry in the Config Store')
    .argument('<name>', 'cluster name (its Sparkplug group, repo path and account names)')
    .option('--namespace <ns>', 'Kubernetes namespace of the edge components', 'fplus-edge')
    .option('--chart <uuid>', "Helm chart template of the cluster deployment (default: the ServiceConfig's)")
    .option('--bare', 'leave Flux itself unmanaged (the entry\'s "bare": true)')
    .option('--values <file.json>', "Helm values, a JSON object merged over the chart's defaults")
    .action(
      async (name: string, o: { namespace: string; chart?: string; bare?: boolean; values?: string }, cmd: Command) => {
        const { g, conn, api } = ctx(cmd);
        const entry: Record<string, unknown> = { name, namespace: o.namespace };
        if (o.chart) entry.chart = o.chart;
        if (o.bare) entry.bare = true;
        if (o.values) {
          let values: unknown;
          try {
            values = JSON.parse(readFileSync(o.values, 'utf8'));
          } catch (e) {
            throw new CliError(`cannot read ${o.values}: ${(e as Error).message}`, EXIT.usage);
          }
          if (typeof values !== 'object' || values === null || Array.isArray(values))
            throw new CliError(`${o.values} must hold a JSON object`, EXIT.usage);
          entry.values = values;
        }
        // A second cluster of a name would only wait, failed, for the first to go.
        const taken = await api.resolve(name).catch((e: unknown) => {
          if (e instanceof CliError && e.code === EXIT.notFound) return undefined;
          throw e;
        });
        if (taken) throw new CliError(`a cluster named ${taken.name} exists already (${taken.uuid})`);
        const uuid = await new ConfigStoreClient(conn, clusterUuids(io.env)).createCluster(entry);
        print(g, { uuid, ...entry }, () => `Created ${name} ${uuid}\nNext: cluster-manager status ${name} --watch`);
      },
    );

  client('delete', "delete a cluster's configuration entry; the Cluster Manager tears down what it made")
    .argument('<cluster>', 'cluster name or UUID')
    .action(async (cluster: string, _o, cmd: Command) => {
      const { g, conn, api } = ctx(cmd);
      const c = await api.resolve(cluster);
      await new ConfigStoreClient(conn, clusterUuids(io.env)).deleteCluster(c.uuid);
      print(
        g,
        { uuid: c.uuid, deleted: true },
        () => `Deleted ${c.name} ${c.uuid}; its teardown follows (phase "deleting")`,
      );
    });

  client('bootstrap', 'make a bootstrap URL and print the line to run on the edge cluster')
    .argument('<cluster>', 'cluster name or UUID')
    .action(async (cluster: string, _o, cmd: Command) => {
      const { g, api } = ctx(cmd);
      const c = await api.resolve(cluster);
      const b = await api.bootstrapUrl(c.uuid);
      const run = `curl -fsS '${b.url}' | sh`;
      print(g, { uuid: c.uuid, ...b, command: run }, () =>
        [
          `URL:      ${b.url}`,
          `Expires:  ${b.expires ?? '-'} (${relative(b.expires, io.now())})`,
          '',
          "On the edge cluster's admin machine run:",
          '',
          `  ${run}`,
        ].join('\n'),
      );
    });

  client('seal', "seal one value into a cluster's repo as a SealedSecret key")
    .argument('<cluster>', 'cluster name or UUID')
    .argument('<secret>', 'NAMESPACE/SECRET')
    .argument('<key>', 'key in the secret')
    .argument('[source]', '"-" to read the value from standard input')
    .option('--from-file <path>', 'read the value from a file')
    .option('--from-literal <value>', 'the value itself (it is then in your shell history)')
    .addOption(
      new Option('--scope <scope>', 'where the sealed value may be unsealed').choices(SCOPES).default('strict'),
    )
    .option('--dry-run', 'print the SealedSecret manifest that would be committed, and write nothing')
    .action(
      async (
        cluster: string,
        secret: string,
        key: string,
        source: string | undefined,
        o: { fromFile?: string; fromLiteral?: string; scope: string; dryRun?: boolean },
        cmd: Command,
      ) => {
        if (source !== undefined && source !== '-')
          throw new CliError(`unexpected ${JSON.stringify(source)}: give "-" to read standard input`, EXIT.usage);
        const given = [source !== undefined, o.fromFile !== undefined, o.fromLiteral !== undefined].filter(Boolean);
        if (given.length !== 1)
          throw new CliError(
            'give the value in exactly one way: --from-file PATH, --from-literal VALUE or -',
            EXIT.usage,
          );
        const at = { ...secretRef(secret), key };
        const { g, api } = ctx(cmd);
        const value =
          o.fromLiteral !== undefined
            ? Buffer.from(o.fromLiteral)
            : o.fromFile !== undefined
              ? readValueFile(o.fromFile)
              : await readLimited(io.stdin, MAX_SECRET_BYTES, 'standard input');
        const c = await api.resolve(cluster);
        const manifest = await api.seal(c.uuid, at, value, { scope: o.scope, dryRun: o.dryRun });
        if (o.dryRun) {
          out(g.json ? JSON.stringify({ uuid: c.uuid, ...at, scope: o.scope, manifest }) : manifest!);
          return;
        }
        print(
          g,
          { uuid: c.uuid, ...at, scope: o.scope, sealed: true },
          () => `Sealed ${at.namespace}/${at.name} ${key} (${o.scope}) into ${c.name}'s repo`,
        );
      },
    );

  client('secrets', "list a cluster's sealed secrets: names, scopes, keys, certificates (never values)")
    .argument('<cluster>', 'cluster name or UUID')
    .argument('[secret]', 'NAMESPACE/SECRET: only this one')
    .action(async (cluster: string, secret: string | undefined, _o, cmd: Command) => {
      const one = secret === undefined ? undefined : secretRef(secret);
      const { g, api } = ctx(cmd);
      const c = await api.resolve(cluster);
      const list = await api.secrets(c.uuid, one);
      print(g, one ? list[0] : list, () => secretList(list, paint));
    });

  client('rm-secret', 'remove one key of a sealed secret (the file goes with its last key)')
    .argument('<cluster>', 'cluster name or UUID')
    .argument('<secret>', 'NAMESPACE/SECRET')
    .argument('<key>', 'key in the secret')
    .action(async (cluster: string, secret: string, key: string, _o, cmd: Command) => {
      const at = { ...secretRef(secret), key };
      const { g, api } = ctx(cmd);
      const c = await api.resolve(cluster);
      await api.removeSecret(c.uuid, at);
      print(
        g,
        { uuid: c.uuid, ...at, removed: true },
        () => `Removed ${at.namespace}/${at.name} ${key} from ${c.name}`,
      );
    });

  client('reseal', "list the sealed values that predate the cluster's current certificate and must be sealed again")
    .argument('<cluster>', 'cluster name or UUID')
    .action(async (cluster: string, _o, cmd: Command) => {
      const { g, api } = ctx(cmd);
      const c = await api.resolve(cluster);
      const r = await api.reseal(c.uuid);
      print(g, { uuid: c.uuid, ...r }, () => resealText(r, paint));
    });

  client('redeploy', "render a cluster's managed files afresh and push them (or every cluster's with --all)")
    .argument('[cluster]', 'cluster name or UUID')
    .option('--all', 'every cluster you may manage, through the work queue')
    .action(async (cluster: string | undefined, o: { all?: boolean }, cmd: Command) => {
      if (!!cluster === !!o.all) throw new CliError('give a cluster or --all, not both or neither', EXIT.usage);
      const { g, api } = ctx(cmd);
      if (o.all) {
        const r = await api.redeployAll();
        print(g, r, () => `Queued a redeploy of ${r.queued} clusters`);
        return;
      }
      const c = await api.resolve(cluster!);
      const r = await api.redeploy(c.uuid);
      print(g, { uuid: c.uuid, ...r }, () => `Redeployed ${c.name}: repo at ${r.head ?? '-'}`);
    });

  client('login', 'exchange the user and password for a token, kept for this user only').action(
    async (_o, cmd: Command) => {
      const { g, conn, api } = ctx(cmd);
      if (!conn.credentials)
        throw new CliError(
          'login needs --user and --password (or CLUSTER_MANAGER_USER and CLUSTER_MANAGER_PASSWORD)',
          EXIT.usage,
        );
      const t = await api.token();
      const file = writeToken(io.env, { url: conn.url, token: t.token, expiry: t.expiry });
      const expiry = new Date(t.expiry).toISOString();
      print(
        g,
        { url: conn.url, file, expiry },
        () => `Logged in to ${conn.url} until ${expiry} (${relative(expiry, io.now())}); token in ${file}`,
      );
    },
  );

  return program;
}

/**
 * Runs the command line and answers its exit code. Usage errors are 2,
 * failures print the service's message in one line, never a stack.
 */
export async function runCli(argv: string[], io: Io, runServer: (c: ServerCommand) => Promise<void>): Promise<number> {
  const program = buildProgram(io, runServer);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.done;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are answers, not failures; commander has printed the usage error.
      return e.exitCode === 0 ? EXIT.done : EXIT.usage;
    }
    const err = e instanceof CliError ? e : new CliError((e as Error).message ?? String(e));
    io.stderr.write(`cluster-manager: ${err.message}\n`);
    return err.code;
  }
}
