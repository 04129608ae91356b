/**
 * Where the Cluster Manager is and who the caller is, from (in this order)
 * the options, the environment, the token `cluster-manager login` kept, and
 * the embedded default's `endpoints.json`. Nothing here talks to a service.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { makePrivateDir, writePrivateFile } from '../lib/private-files.js';
import { CliError, EXIT } from './exit.js';

export type Env = Record<string, string | undefined>;

export interface ConnectionOptions {
  url?: string;
  user?: string;
  password?: string;
  directory?: string;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface Connection {
  /** The Cluster Manager's base URL, without a trailing slash. */
  url: string;
  /** The `Authorization` header value, if there is a credential at all. */
  authorization?: string;
  /** A username and password, which the Config Store also takes; absent with a login token. */
  credentials?: Credentials;
  /** The Directory's base URL, needed only to reach the Config Store. */
  directory?: string;
  /** Where the credential came from, for messages. */
  credentialSource: 'options' | 'environment' | 'login' | 'endpoints' | 'none';
}

/** What `login` keeps: a bearer token of one Cluster Manager. */
export interface StoredToken {
  url: string;
  token: string;
  /** Milliseconds since the epoch, as `POST /token` answers. */
  expiry: number;
}

/** The fields of the embedded default's `endpoints.json` the command line reads. */
interface Endpoints {
  directory?: string;
  clusterManager?: string | null;
  username?: string;
  password?: string;
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

export const basicAuth = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

/** `$XDG_CONFIG_HOME/cluster-manager/token.json`, or under `~/.config`. */
export function tokenFilePath(env: Env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'cluster-manager', 'token.json');
}

/** Keeps the token for this user only: the directory 0700, the file 0600, replaced whole. */
export function writeToken(env: Env, t: StoredToken): string {
  const file = tokenFilePath(env);
  makePrivateDir(dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  writePrivateFile(tmp, `${JSON.stringify(t)}\n`);
  renameSync(tmp, file);
  return file;
}

export function readToken(env: Env): StoredToken | undefined {
  const file = tokenFilePath(env);
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<StoredToken>;
    if (typeof v.url === 'string' && typeof v.token === 'string' && typeof v.expiry === 'number')
      return v as StoredToken;
  } catch {
    // A damaged file is as good as none: `login` writes a new one.
  }
  return undefined;
}

/** The embedded default's endpoints file, in DATA_DIR or ./data, if there is one. */
function readEndpoints(env: Env, cwd = process.cwd()): Endpoints | undefined {
  const file = join(resolve(cwd, env.DATA_DIR || 'data'), 'endpoints.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Endpoints;
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function pair(user: string | undefined, password: string | undefined, where: string): Credentials | undefined {
  if (user === undefined && password === undefined) return undefined;
  if (!user || password === undefined)
    throw new CliError(`${where}: give both a user and a password, or neither`, EXIT.usage);
  return { username: user, password };
}

/**
 * The connection to use. The embedded default's file is read only for what
 * nothing else gives, and its credential only for its own Cluster Manager.
 */
export function resolveConnection(opts: ConnectionOptions, env: Env, now = Date.now()): Connection {
  const given = opts.url || env.CLUSTER_MANAGER_URL;
  const fromOptions = pair(opts.user, opts.password, '--user and --password');
  const fromEnv = pair(env.CLUSTER_MANAGER_USER, env.CLUSTER_MANAGER_PASSWORD, 'CLUSTER_MANAGER_USER and _PASSWORD');
  const endpoints =
    !given || !(fromOptions || fromEnv) || !(opts.directory || env.DIRECTORY_URL) ? readEndpoints(env) : undefined;
  const stored = readToken(env);

  const url = given || endpoints?.clusterManager || stored?.url;
  if (!url)
    throw new CliError(
      'no Cluster Manager URL: give --url or CLUSTER_MANAGER_URL (or run where data/endpoints.json is)',
      EXIT.usage,
    );
  const base = trimSlash(url);
  const directory = opts.directory || env.DIRECTORY_URL || endpoints?.directory;
  const conn = (c: Omit<Connection, 'url' | 'directory'>): Connection => ({
    url: base,
    ...(directory ? { directory: trimSlash(directory) } : {}),
    ...c,
  });

  if (fromOptions)
    return conn({ credentials: fromOptions, authorization: basicAuth(fromOptions), credentialSource: 'options' });
  if (fromEnv)
    return conn({ credentials: fromEnv, authorization: basicAuth(fromEnv), credentialSource: 'environment' });
  // A token is sent only to the service that issued it, and only while it is valid.
  if (stored && trimSlash(stored.url) === base && stored.expiry > now)
    return conn({ authorization: `Bearer ${stored.token}`, credentialSource: 'login' });
  if (endpoints?.username && endpoints.password !== undefined && trimSlash(endpoints.clusterManager ?? '') === base) {
    const c = { username: endpoints.username, password: endpoints.password };
    return conn({ credentials: c, authorization: basicAuth(c), credentialSource: 'endpoints' });
  }
  return conn({ credentialSource: 'none' });
}
