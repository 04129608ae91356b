import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { ServiceError } from '../factoryplus/http.js';
import { send } from '../lib/http-client.js';

/** Text of a network error; Node's AggregateError (IPv4 + IPv6 attempts) has an empty message. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  if (e.message) return e.message;
  const inner = (e as { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length) return inner.map(errorText).join('; ');
  return code ?? e.name;
}

/** The cause part of a ServiceError for an unreachable service ("connect ECONNREFUSED …"). */
export function unreachableCause(e: ServiceError): string {
  const m = /(?:failed|cannot reach \S+): (.*)$/s.exec(e.message);
  return (m?.[1] ?? e.message).trim() || 'no connection';
}

export type Ping =
  | { kind: 'answered'; status: number; service?: string }
  | { kind: 'unreachable'; cause: string };

/** `GET <base>ping` without credentials: any HTTP answer shows something listens there. */
export async function ping(base: string, timeoutMs: number): Promise<Ping> {
  const url = new URL('ping', base.endsWith('/') ? base : `${base}/`);
  try {
    const res = await send(url, { method: 'GET', headers: { Accept: 'application/json' }, timeoutMs });
    let service: string | undefined;
    if (res.status === 200) {
      try {
        const body = JSON.parse(res.text) as { service?: unknown };
        if (typeof body.service === 'string') service = body.service;
      } catch { /* not JSON: judged by the caller */ }
    }
    return { kind: 'answered', status: res.status, service };
  } catch (e) {
    return { kind: 'unreachable', cause: errorText(e) };
  }
}

export class MqttProbeError extends Error {
  /** `refused`: the broker turned the credentials down; `protocol`: it does not speak the MQTT protocol level asked for. */
  constructor(message: string, readonly refused: boolean, readonly protocol = false) {
    super(message);
    this.name = 'MqttProbeError';
  }
}

/** CONNACK return codes (3.1.1) and reason codes (5) that mean the credentials were refused. */
const REFUSED = new Set([4, 5, 134, 135]);
/** "Unacceptable protocol version" (3.1.1) and "Unsupported protocol version" (5). */
const PROTOCOL = new Set([1, 132]);

/**
 * Connects to the broker with the credentials, waits for a successful
 * CONNACK and disconnects. Rejects with a MqttProbeError (`refused` when the
 * broker turned the credentials down) on failure or after `timeoutMs`.
 */
export function probeMqtt(url: string, creds: { username: string; password: string }, protocolVersion: 4 | 5, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let client: ReturnType<typeof mqtt.connect>;
    try {
      client = mqtt.connect(url, {
        username: creds.username, password: creds.password, protocolVersion,
        clientId: `check-config-${randomBytes(6).toString('hex')}`, clean: true,
        reconnectPeriod: 0, connectTimeout: timeoutMs,
      });
    } catch (e) {
      reject(new MqttProbeError(errorText(e), false));
      return;
    }
    let done = false;
    const finish = (err?: MqttProbeError) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.removeAllListeners('connect');
      client.removeAllListeners('close');
      // Late errors of a client being closed are of no interest any more.
      client.on('error', () => undefined);
      client.end(err !== undefined);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(new MqttProbeError(`no answer within ${timeoutMs} ms`, false)), timeoutMs);
    client.once('connect', () => finish());
    client.on('error', (e: Error & { code?: unknown }) => {
      const code = typeof e.code === 'number' ? e.code : undefined;
      finish(new MqttProbeError(errorText(e), code !== undefined && REFUSED.has(code), code !== undefined && PROTOCOL.has(code)));
    });
    client.once('close', () => finish(new MqttProbeError('the connection closed before the broker accepted it', false)));
  });
}

export { ServiceError };
