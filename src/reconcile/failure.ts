/**
 * What went wrong, as an operator reads it: a stable CamelCase reason per
 * kind of failure and dependency, and the cause in words. A failing step's
 * condition carries both, so "why is this cluster stuck" is answered in its
 * status, on Sparkplug and in `GET /v1/cluster`, not in a log line.
 */
import { Errors as GitErrors } from 'isomorphic-git';
import { ServiceError } from '../factoryplus/http.js';
import { GitHttpTimeout } from '../repo/git-http.js';
import { GitHttpError, PushRejected } from '../repo/git-push.js';
import { PathConflict, WriteQueueTimeout } from '../repo/writer.js';

/** A failure that already knows its reason (spec errors, conflicts found by the reconciler). */
export class ReasonedError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Classified {
  reason: string;
  message: string;
}

/** `Unavailable` for silence, lost connections and 5xx; `Unauthorized` for 401; `Refused` for 403. */
function byStatus(service: string, status: number): string {
  if (status === 0 || status >= 500) return `${service}Unavailable`;
  if (status === 401) return `${service}Unauthorized`;
  if (status === 403) return `${service}Refused`;
  if (status === 404) return `${service}NotFound`;
  if (status === 409) return `${service}Conflict`;
  return `${service}Error`;
}

const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

export function classify(e: unknown): Classified {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof ReasonedError) return { reason: e.reason, message };
  if (e instanceof ServiceError) return { reason: byStatus(e.label ?? 'Service', e.status), message };
  if (e instanceof GitHttpTimeout || e instanceof WriteQueueTimeout) return { reason: 'GitUnavailable', message };
  if (e instanceof GitHttpError) return { reason: byStatus('Git', e.status), message };
  if (e instanceof GitErrors.HttpError) return { reason: byStatus('Git', e.data.statusCode), message };
  if (e instanceof PushRejected) return { reason: 'GitConflict', message };
  if (e instanceof PathConflict) return { reason: 'RepoPathConflict', message };
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  // Only the Git client talks to a server without going through ServiceError.
  if (code && NETWORK.has(code)) return { reason: 'GitUnavailable', message };
  return { reason: 'InternalError', message };
}
