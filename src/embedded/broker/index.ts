/**
 * Embedded MQTT broker (aedes over a plain TCP listener) for running the
 * Cluster Manager and its embedded services without an external broker.
 *
 * Protocol: aedes speaks MQTT 3.1 and 3.1.1 only. An MQTT 5 CONNECT is
 * answered with a two-byte 3.1.1-style CONNACK carrying return code 1
 * ("unacceptable protocol version") and the connection is closed. mqtt.js
 * with `protocolVersion: 5` reads that as reason code 1 and emits an error
 * "Connection refused: Unacceptable protocol version" (code 1); with
 * automatic reconnection it keeps retrying and failing. Clients of this
 * broker must connect with `protocolVersion: 4` (3.1.1).
 *
 * Every client must present a username and password accepted by
 * `authenticate`; others get CONNACK return code 5 (not authorised). With
 * `topics`, publishing and subscribing are decided per topic (see
 * topic-acl.ts): a refused subscription gets SUBACK 0x80, a refused
 * publication closes the connection (MQTT 3.1.1 has no way to refuse one).
 *
 * Packet sizes are limited (packet-guard.ts): before authentication to
 * `limits.beforeAuth` bytes in all, afterwards to `limits.afterAuth` per
 * packet; a client going over is disconnected.
 */
import net from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { TooManyFailures } from '../../lib/failure-limit.js';
import type { Logger } from '../../lib/log.js';
import type { Principal } from '../auth/model.js';
import { guardPacketSizes, type PacketGuard, type PacketLimits } from './packet-guard.js';
import type { TopicAcl } from './topic-acl.js';
import { urlHost } from '../../lib/listen.js';

export type { PacketLimits } from './packet-guard.js';

/** 64 KiB before authentication, 1 MiB per packet afterwards; see the README ("Hardening limits"). */
const DEFAULT_PACKET_LIMITS: PacketLimits = { beforeAuth: 64 * 1024, afterAuth: 1024 * 1024 };

export interface BrokerOptions {
  /** Interface to listen on, normally loopback. */
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /**
   * Checks a CONNECT's credentials (`address` is the client's): false to
   * refuse, true or the principal to accept. Throwing TooManyFailures refuses too.
   */
  authenticate: (
    username: string,
    password: string,
    address: string,
  ) => boolean | Principal | undefined | Promise<boolean | Principal | undefined>;
  /** Per-topic permissions of authenticated principals; without it every client may use every topic. */
  topics?: TopicAcl;
  limits?: PacketLimits;
  log: Logger;
}

export interface EmbeddedBroker {
  /** `mqtt://host:port` for clients. */
  url: string;
  port: number;
  /** Stops listening and disconnects every client. Idempotent. */
  close(): Promise<void>;
}

/** CONNACK return code 5 in MQTT 3.1.1. */
const NOT_AUTHORIZED = 5;

function notAuthorized(): AuthenticateError {
  return Object.assign(new Error('Not authorized'), { returnCode: NOT_AUTHORIZED }) as AuthenticateError;
}

export async function startBroker(opts: BrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log;

  const limits = opts.limits ?? DEFAULT_PACKET_LIMITS;
  const guards = new WeakMap<object, PacketGuard>();
  const principals = new WeakMap<Client, Principal>();
  const topics = opts.topics;
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      if (username === undefined || password === undefined) {
        log.warn({ clientId: client.id }, 'MQTT client refused: no credentials');
        done(notAuthorized(), false);
        return;
      }
      const address = (client.conn as Partial<net.Socket>).remoteAddress ?? '';
      Promise.resolve()
        .then(() => opts.authenticate(username, password.toString('utf8'), address))
        .then(
          (who) => {
            if (who && (typeof who === 'object' || !topics)) {
              if (typeof who === 'object') principals.set(client, who);
              guards.get(client.conn)?.authenticated();
              done(null, true);
            } else {
              log.warn({ clientId: client.id, username }, 'MQTT client refused: bad credentials');
              done(notAuthorized(), false);
            }
          },
          (err: unknown) => {
            if (err instanceof TooManyFailures)
              log.warn(
                { clientId: client.id, username, address },
                'MQTT client refused: too many failed password checks',
              );
            else log.error({ err, clientId: client.id, username }, 'MQTT authentication failed');
            done(notAuthorized(), false);
          },
        );
    },
    authorizePublish: (client, packet, callback) => {
      const who = client && principals.get(client);
      if (!topics || !client || (who && topics.mayPublish(who, packet.topic))) {
        callback(null);
        return;
      }
      log.warn({ clientId: client.id, principal: who?.uuid, topic: packet.topic }, 'MQTT publish refused');
      callback(new Error(`not permitted to publish on ${packet.topic}`));
    },
    authorizeSubscribe: (client, sub, callback) => {
      const who = principals.get(client);
      if (!topics || (who && topics.maySubscribe(who, sub.topic))) {
        callback(null, sub);
        return;
      }
      log.warn({ clientId: client.id, principal: who?.uuid, topic: sub.topic }, 'MQTT subscription refused');
      callback(null, null);
    },
  });

  aedes.on('clientReady', (client) => log.debug({ clientId: client.id }, 'MQTT client connected'));
  aedes.on('clientDisconnect', (client) => log.debug({ clientId: client.id }, 'MQTT client disconnected'));
  aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'MQTT client error'));
  aedes.on('connectionError', (client, err) =>
    log.debug({ clientId: client?.id, err: err.message }, 'MQTT connection error'),
  );

  // Sockets are tracked so close() also drops connections aedes does not
  // (yet) know as clients, e.g. ones that have not finished CONNECT.
  const sockets = new Set<net.Socket>();
  // No Nagle delay: MQTT control packets are small and latency-sensitive.
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    guards.set(
      socket,
      guardPacketSizes(socket, limits, (why) =>
        log.warn({ address: socket.remoteAddress, why }, 'MQTT connection closed: packet too large'),
      ),
    );
    aedes.handle(socket);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw err;
  }
  server.on('error', (err) => log.error({ err }, 'MQTT listener error'));

  const port = (server.address() as net.AddressInfo).port;
  const url = `mqtt://${urlHost(opts.host)}:${port}`;
  log.info({ url }, 'Embedded MQTT broker listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await serverClosed;
      log.info({ url }, 'Embedded MQTT broker closed');
    })();
    return closing;
  };

  return { url, port, close };
}
