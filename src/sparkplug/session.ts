/**
 * One MQTT connection of the node, and what its subscribers have been told.
 *
 * Sparkplug state (seq, which devices are born, the values consumers hold)
 * only means something within one connection: a new connection starts from
 * a fresh NBIRTH. Keeping it here, rather than on the node, means a stale
 * connection's bookkeeping can never leak into the next one.
 */
import type { MqttClient } from 'mqtt';
import type { DeviceEntry, Published } from './model.js';

export interface BornDevice {
  /** The model entry this DBIRTH was for; a different entry under the same id means "re-added". */
  entry: DeviceEntry;
  published: Published;
}

export class Session {
  /** False once the connection has closed; nothing more may be published on it. */
  alive = true;
  /** CONNACK received. */
  connected = false;
  /** Command (and STATE) subscriptions acknowledged: births may follow. */
  subscribed = false;
  /** The primary host's latest STATE said online (only consulted when one is configured). */
  hostOnline = false;
  /** NBIRTH published on this connection. */
  born = false;
  /** A rebirth was requested; the next sync births everything again. */
  rebirthRequested = false;
  /** seq of the next message. */
  seq = 0;
  nodePublished: Published = new Map();
  readonly devices = new Map<string, BornDevice>();

  constructor(
    readonly client: MqttClient,
    readonly bdSeq: number,
  ) {}

  /** Takes the seq for the next message. */
  nextSeq(): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) % 256;
    return seq;
  }
}
