import type { Logger } from 'pino';

/** The outcome of one check; `formatChecks` prints it as one line. */
export interface CheckResult {
  /** Short, fixed name of the check (see `CHECK_NAMES`). */
  name: string;
  /** True when the check ran and passed. Skipped checks are not ok. */
  ok: boolean;
  /** What was found, or `skipped: needs <name>` for a check that could not run. Never holds a password. */
  detail: string;
  /** What to change so that the check passes; set on every failure. */
  fix?: string;
  /** Set when the check did not run because a check it depends on failed (or had nothing to check). */
  skipped?: true;
}

export interface CheckOptions {
  /** The service account; default SERVICE_USERNAME/SERVICE_PASSWORD from the configuration. */
  credentials?: { username: string; password: string };
  /** The Directory to check; default DIRECTORY_URL (e.g. a running embedded core's Directory in embedded mode). */
  directoryUrl?: string;
  log?: Logger;
  /** Limit of each request and of the MQTT connection (default 5000 ms). */
  timeoutMs?: number;
}

/** The checks in the order `runChecks` reports them. */
export const CHECK_NAMES = [
  'Configuration',
  'External URL',
  'Directory',
  'Credentials',
  'Config Store',
  'Auth',
  'Git',
  'MQTT',
  'Notifications',
  'Sparkplug node',
  'ServiceConfig',
  'Flux template',
  'HelmRelease template',
  'Helm chart template',
  'Bootstrap template',
  'App access',
  'UUID profile',
] as const;

export type CheckName = (typeof CHECK_NAMES)[number];
