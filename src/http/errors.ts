import type { Context, Next } from 'koa';
import { BootstrapTemplateError } from '../bootstrap/script.js';
import { ServiceError } from '../factoryplus/http.js';
import { HttpError } from '../lib/http-errors.js';
import { PathConflict } from '../repo/writer.js';
import { CertificateError } from '../sealing/certificate.js';
import { SecretLimitExceeded } from '../sealing/limits.js';
import { SealingConflict } from '../sealing/manifest.js';
import { InvalidSecretAddress } from '../sealing/names.js';

/**
 * The answer to a request its own content or the cluster's state refuses:
 * the one table of the service's errors and their statuses, or undefined
 * for an error that is not a refusal.
 */
export function refusalOf(e: unknown): HttpError | undefined {
  if (e instanceof InvalidSecretAddress) return new HttpError(400, e.message);
  if (e instanceof SealingConflict) return new HttpError(409, e.message, {}, { reason: e.code });
  if (e instanceof PathConflict) return new HttpError(409, e.message, {}, { reason: 'path-conflict' });
  if (e instanceof SecretLimitExceeded) return new HttpError(413, e.message, {}, { reason: e.reason });
  // The edge reported a certificate that cannot be used: a fact about the
  // cluster, not an outage, so not worth retrying until it reports again.
  if (e instanceof CertificateError) return new HttpError(422, e.message, {}, { reason: e.code });
  if (e instanceof BootstrapTemplateError)
    return new HttpError(503, `the Bootstrap script template cannot be used: ${e.message}`);
  return undefined;
}

/**
 * Errors as answers: a refusal by its status, and a Factory+ service that
 * cannot be reached or answers with an error while a request needs it as a
 * 503 the client may retry, never a 500.
 */
export async function errorAnswers(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (e) {
    const refusal = refusalOf(e);
    if (refusal) throw refusal;
    if (!(e instanceof ServiceError)) throw e;
    throw new HttpError(
      503,
      e.status === 0 ? `a Factory+ service cannot be reached: ${e.message}` : `a Factory+ service failed: ${e.message}`,
    );
  }
}
