import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { configSchema } from './schema.js';
import { envBindings, type EnvBinding } from './env.js';
import type { Config } from './types.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const configDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../config');

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where objects merge and everything else replaces. */
function overlay(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? overlay(out[k] as Json, v) : v;
  }
  return out;
}

function readJson(file: string, problems: string[]): Json {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (!isObject(v)) problems.push(`${file}: must contain a JSON object`);
    return isObject(v) ? v : {};
  } catch (e) {
    problems.push(`${file}: ${(e as Error).message}`);
    return {};
  }
}

function setPath(obj: Json, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isObject(cur[k])) cur[k] = {};
    cur = cur[k] as Json;
  }
  cur[keys[keys.length - 1]] = value;
}

function parseEnv(b: EnvBinding, name: string, raw: string, problems: string[]): unknown {
  switch (b.type) {
    case 'string':
      return raw;
    case 'nullable-string':
      return raw === '' ? null : raw;
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (b.type === 'integer' && !Number.isInteger(n))) {
        problems.push(
          `${name}=${JSON.stringify(raw)}: must be ${b.type === 'integer' ? 'a whole number' : 'a number'} (sets ${b.path})`,
        );
        return undefined;
      }
      return n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      problems.push(`${name}=${JSON.stringify(raw)}: must be true or false (sets ${b.path})`);
      return undefined;
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Applied last, after files and environment (tests use this). */
  overrides?: Json;
}

/**
 * Configuration = config/default.json, then config/<profile>.json for a
 * non-default UUID profile, then CONFIG_FILE, then environment variables,
 * then programmatic overrides. The result is validated as a whole.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let merged = readJson(join(configDir, 'default.json'), problems);

  const file = env.CONFIG_FILE ? readJson(resolve(env.CONFIG_FILE), problems) : undefined;
  // The profile may come from the environment, the caller or the file; its
  // UUIDs go under the file's, so the file can still change single UUIDs.
  const profile =
    env.UUID_PROFILE ?? (opts.overrides?.profile as string | undefined) ?? (file?.profile as string | undefined);
  if (profile !== undefined && profile !== 'seed') {
    if (profile !== 'acs') problems.push(`UUID_PROFILE=${JSON.stringify(profile)}: must be "seed" or "acs"`);
    else merged = overlay(merged, readJson(join(configDir, 'acs.json'), problems));
  }
  if (file) merged = overlay(merged, file);
  if (env.UUID_PROFILE) merged.profile = env.UUID_PROFILE;

  for (const b of envBindings) {
    for (const name of b.names) {
      const raw = env[name];
      if (raw === undefined) continue;
      const v = parseEnv(b, name, raw, problems);
      if (v !== undefined) setPath(merged, b.path, v);
      break;
    }
  }
  if (opts.overrides) merged = overlay(merged, opts.overrides);

  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(configSchema);
  if (!validate(merged)) {
    for (const err of validate.errors ?? []) {
      const where = err.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)';
      const binding = envBindings.find((b) => b.path === where);
      const hint = binding ? ` (environment: ${binding.names.join(' or ')})` : '';
      const extra =
        err.keyword === 'additionalProperties'
          ? ` "${(err.params as { additionalProperty: string }).additionalProperty}"`
          : err.keyword === 'enum'
            ? ` (${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
            : '';
      problems.push(`${where}: ${err.message}${extra}${hint}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return merged as unknown as Config;
}
