import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { ServiceError } from '../factoryplus/http.js';
import { send } from '../lib/http-client.js';
import { subscribeChecked, type Refusal } from '../lib/mqtt-subscribe.js';

/** Text of a network error; Node's AggregateError (IPv4 + IPv6 attempts) has an empty message. */
function errorText(e: unknown): string {
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

export type Ping = { kind: 'answered'; status: number; service?: string } | { kind: 'unreachable'; cause: string };

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
      } catch {
        /* not JSON: judged by the caller */
      }
    }
    return { kind: 'answered', status: res.status, service };
  } catch (e) {
    return { kind: 'unreachable', cause: errorText(e) };
  }
}

export class MqttProbeError extends Error {
  /** `refused`: the broker turned the credentials down; `protocol`: it does not speak the MQTT protocol level asked for. */
  constructor(
    message: string,
    readonly refused: boolean,
    readonly protocol = false,
  ) {
    super(message);
    this.name = 'MqttProbeError';
  }
}

/** CONNACK return codes (3.1.1) and reason codes (5) that mean the credentials were refused. */
const REFUSED = new Set([4, 5, 134, 135]);
/** "Unacceptable protocol version" (3.1.1) and "Unsupported protocol version" (5). */
const PROTOCOL = new Set([1, 132]);

/**
 * Connects to the broker with the credentials and resolves with the client
 * once CONNACK accepted them. Rejects with a MqttProbeError (`refused` when
 * the broker turned the credentials down) on failure or after `timeoutMs`.
 * The caller ends the client.
 */
export function connectMqtt(
  url: string,
  creds: { username: string; password: string },
  protocolVersion: 4 | 5,
  timeoutMs: number,
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    let client: MqttClient;
    try {
      client = mqtt.connect(url, {
        username: creds.username,
        password: creds.password,
        protocolVersion,
        clientId: `check-config-${randomBytes(6).toString('hex')}`,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: timeoutMs,
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
      client.removeAllListeners('error');
      // Late errors of a client are of no interest to a probe: each step watches the connection itself.
      client.on('error', () => undefined);
      if (err) {
        client.end(true);
        reject(err);
      } else {
        resolve(client);
      }
    };
    const timer = setTimeout(() => finish(new MqttProbeError(`no answer within ${timeoutMs} ms`, false)), timeoutMs);
    client.once('connect', () => finish());
    client.on('error', (e: Error & { code?: unknown }) => {
      const code = typeof e.code === 'number' ? e.code : undefined;
      finish(
        new MqttProbeError(
          errorText(e),
          code !== undefined && REFUSED.has(code),
          code !== undefined && PROTOCOL.has(code),
        ),
      );
    });
    client.once('close', () =>
      finish(new MqttProbeError('the connection closed before the broker accepted it', false)),
    );
  });
}

/** Connects as connectMqtt does and disconnects at once. */
export async function probeMqtt(
  url: string,
  creds: { username: string; password: string },
  protocolVersion: 4 | 5,
  timeoutMs: number,
): Promise<void> {
  const client = await connectMqtt(url, creds, protocolVersion, timeoutMs);
  await client.endAsync().catch(() => undefined);
}

/** Rejects after `ms`, or when the connection closes first, whichever comes first. */
function bounded<T>(client: MqttClient, ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onClose: (() => void) | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new MqttProbeError(`no answer to the ${what} within ${ms} ms`, false)), ms);
    onClose = () => reject(new ClosedError(`the broker closed the connection after the ${what}`));
    client.once('close', onClose);
  });
  return Promise.race([work, limit]).finally(() => {
    clearTimeout(timer);
    if (onClose) client.off('close', onClose);
  });
}

/** The broker closed the connection while a probe waited for its answer. */
class ClosedError extends MqttProbeError {
  constructor(message: string) {
    super(message, false);
    this.name = 'ClosedError';
  }
}

/**
 * Subscribes to every filter (QoS 1) and resolves with those the broker
 * refused. Rejects with a MqttProbeError when no SUBACK comes.
 */
export function probeSubscribe(client: MqttClient, topics: string[], timeoutMs: number): Promise<Refusal[]> {
  return bounded(client, timeoutMs, 'subscription', subscribeChecked(client, topics, 1));
}

export type PublishOutcome = { kind: 'accepted'; certain: boolean } | { kind: 'refused'; why: string };

/** PUBACK reason codes of MQTT 5 from 0x80 up refuse the publish. */
const PUBACK_REASONS: Record<number, string> = {
  0x80: 'unspecified error',
  0x83: 'implementation specific error',
  0x87: 'not authorized',
  0x90: 'topic name invalid',
  0x97: 'quota exceeded',
  0x99: 'payload format invalid',
};

/**
 * Publishes once at QoS 1, not retained, and tells from the broker's answer
 * whether it took the message. MQTT 5 answers a refusal with a PUBACK
 * reason code of 0x80 or more. MQTT 3.1.1 has no negative PUBACK: brokers
 * such as aedes close the connection instead, which counts as refused, and
 * others (mosquitto) acknowledge and drop, which no client can tell from
 * delivery; `certain` is false then.
 */
export async function probePublish(
  client: MqttClient,
  topic: string,
  payload: Uint8Array,
  protocolVersion: 4 | 5,
  timeoutMs: number,
): Promise<PublishOutcome> {
  try {
    await bounded(
      client,
      timeoutMs,
      'publish',
      client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain: false }),
    );
    return { kind: 'accepted', certain: protocolVersion === 5 };
  } catch (e) {
    if (e instanceof ClosedError) return { kind: 'refused', why: e.message };
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && code >= 0x80) {
      return {
        kind: 'refused',
        why: `PUBACK reason code 0x${code.toString(16)} (${PUBACK_REASONS[code] ?? 'refused'})`,
      };
    }
    if (e instanceof MqttProbeError) throw e;
    // mqtt.js fails a publish that was pending when the connection ended with its own error.
    if (!client.connected)
      return { kind: 'refused', why: `the broker closed the connection after the publish (${errorText(e)})` };
    throw new MqttProbeError(errorText(e), false);
  }
}
