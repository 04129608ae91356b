/**
 * A subscription whose refusal says which filter was refused.
 *
 * mqtt.js 5 rejects `subscribeAsync` as soon as any SUBACK code is 0x80 or
 * more, with a message ("Subscribe error: Not authorized") that names no
 * topic; the SUBACK itself rides on the error as `packet.granted`, one code
 * per filter in the order they were sent. This reads it back so that a
 * refusal can be reported as "the broker refused <topic>", which is what an
 * operator has to grant.
 */
import type { MqttClient } from 'mqtt';

export interface Refusal {
  topic: string;
  /** SUBACK return code (3.1.1: 0x80) or reason code (MQTT 5: 0x80 and up). */
  code: number;
}

/** SUBACK codes from 0x80 up refuse the subscription (MQTT 3.1.1 3.9.3, MQTT 5 3.9.3). */
const FAILURE = 0x80;

/** MQTT 5 SUBACK reason codes an operator may meet; 3.1.1 has only 0x80. */
const REASONS: Record<number, string> = {
  0x80: 'refused',
  0x83: 'implementation specific error',
  0x87: 'not authorized',
  0x8f: 'topic filter invalid',
  0x91: 'packet identifier in use',
  0x97: 'quota exceeded',
  0x9e: 'shared subscriptions not supported',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

export function refusalText(r: Refusal): string {
  return `${r.topic} (${REASONS[r.code] ?? 'refused'}, code 0x${r.code.toString(16)})`;
}

/**
 * Subscribes to every filter at `qos` and resolves with the filters the
 * broker refused (empty when all were granted). Rejects only for what is not
 * a SUBACK: a closed connection, a client being ended.
 */
export async function subscribeChecked(client: MqttClient, topics: string[], qos: 0 | 1 | 2): Promise<Refusal[]> {
  let granted: unknown;
  try {
    const subs = await client.subscribeAsync(topics, { qos });
    granted = subs.map((g) => g.qos);
  } catch (err) {
    granted = (err as { packet?: { granted?: unknown } }).packet?.granted;
    if (!Array.isArray(granted)) throw err;
  }
  const codes = granted as unknown[];
  // A SUBACK that does not answer every filter is a broker fault; treat the unanswered as refused.
  return topics
    .map((topic, i) => ({ topic, code: typeof codes[i] === 'number' ? (codes[i] as number) : FAILURE }))
    .filter((r) => r.code >= FAILURE);
}
