import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { decodePayload, type SparkplugPayload } from '../../src/lib/sparkplug/index.js';

export interface Credentials {
  username?: string;
  password?: string;
}

/**
 * Connects an MQTT 3.1.1 client without automatic reconnection. Resolves on
 * CONNACK success; rejects with the client's error on refusal or failure.
 */
export function connectClient(url: string, creds: Credentials, extra: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...creds,
      ...extra,
    });
    const onConnect = (): void => {
      client.off('error', onError);
      client.off('close', onClose);
      resolve(client);
    };
    const onError = (err: Error): void => {
      client.off('connect', onConnect);
      client.off('close', onClose);
      client.end(true);
      reject(err);
    };
    const onClose = (): void => onError(new Error('connection closed before CONNACK'));
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}

export interface Received {
  topic: string;
  /** Decoded Sparkplug payload, or undefined if the bytes did not decode. */
  payload: SparkplugPayload | undefined;
  raw: Buffer;
  decodeError?: Error;
}

export interface Subscriber {
  client: MqttClient;
  /** Every message received so far, in order. */
  messages: Received[];
  /**
   * Resolves with the first message (already received or arriving later)
   * matching `predicate`; rejects after `timeoutMs`.
   */
  waitFor(predicate: (m: Received, index: number) => boolean, timeoutMs?: number): Promise<Received>;
  /** Resolves with the first `count` messages matching `predicate`, once that many have arrived. */
  waitForCount(
    predicate: (m: Received, index: number) => boolean,
    count: number,
    timeoutMs?: number,
  ): Promise<Received[]>;
  close(): Promise<void>;
}

/** Connects, subscribes to `filter` (QoS 1) and collects decoded Sparkplug messages. */
export async function subscribe(url: string, creds: Credentials, filter: string | string[]): Promise<Subscriber> {
  const client = await connectClient(url, creds);
  const messages: Received[] = [];
  const waiters = new Set<() => void>();

  client.on('message', (topic, raw) => {
    let payload: SparkplugPayload | undefined;
    let decodeError: Error | undefined;
    try {
      payload = decodePayload(raw);
    } catch (err) {
      decodeError = err as Error;
    }
    messages.push({ topic, payload, raw, ...(decodeError ? { decodeError } : {}) });
    for (const w of [...waiters]) w();
  });
  await client.subscribeAsync(filter, { qos: 1 });

  /** Resolves with check()'s first defined result, re-checking on every message. */
  const until = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const attempt = (): void => {
        const result = check();
        if (result === undefined) return;
        cleanup();
        resolve(result);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`${what} within ${timeoutMs} ms; got ${messages.map((m) => m.topic).join(', ') || 'nothing'}`),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(attempt);
      };
      waiters.add(attempt);
      attempt();
    });

  const waitFor = (predicate: (m: Received, index: number) => boolean, timeoutMs = 5000): Promise<Received> =>
    until(() => messages.find(predicate), timeoutMs, 'No matching message');

  const waitForCount = (
    predicate: (m: Received, index: number) => boolean,
    count: number,
    timeoutMs = 5000,
  ): Promise<Received[]> => {
    let seen = 0;
    const matched: Received[] = [];
    return until(
      () => {
        for (; seen < messages.length; seen++) if (predicate(messages[seen], seen)) matched.push(messages[seen]);
        return matched.length >= count ? matched.slice(0, count) : undefined;
      },
      timeoutMs,
      `Fewer than ${count} matching messages`,
    );
  };

  return {
    client,
    messages,
    waitFor,
    waitForCount,
    close: () => client.endAsync(),
  };
}

/** Resolves when `client` emits `event`, rejecting after `timeoutMs`. */
export function waitForEvent(
  client: MqttClient,
  event: 'close' | 'offline' | 'connect',
  timeoutMs = 5000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`No '${event}' within ${timeoutMs} ms`)), timeoutMs);
    client.once(event, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Config Store change events as the Sparkplug node's real `onChange` interface consumes them. */
export class ChangeEmitter extends EventEmitter {
  onChange = (listener: (app: string, obj: string) => void): (() => void) => {
    this.on('change', listener);
    return () => this.off('change', listener);
  };

  change(app: string, obj = '00000000-0000-0000-0000-000000000001'): void {
    this.emit('change', app, obj);
  }
}
