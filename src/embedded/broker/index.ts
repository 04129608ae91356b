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
 * `authenticate`; others get CONNACK return code 5 (not authorised). There is
 * no topic-level authorisation.
 */
import net from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';
import type { Logger } from '../../lib/log.js';

export interface BrokerOptions {
  /** Interface to listen on, normally loopback. */
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  authenticate: (username: string, password: string) => boolean | Promise<boolean>;
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

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startBroker(opts: BrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log;

  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      if (username === undefined || password === undefined) {
        log.warn({ clientId: client.id }, 'MQTT client refused: no credentials');
        done(notAuthorized(), false);
        return;
      }
      Promise.resolve()
        .then(() => opts.authenticate(username, password.toString('utf8')))
        .then(
          (ok) => {
            if (ok) {
              done(null, true);
            } else {
              log.warn({ clientId: client.id, username }, 'MQTT client refused: bad credentials');
              done(notAuthorized(), false);
            }
          },
          (err: unknown) => {
            log.error({ err, clientId: client.id, username }, 'MQTT authentication failed');
            done(notAuthorized(), false);
          },
        );
    },
  });

  aedes.on('clientReady', (client) => log.debug({ clientId: client.id }, 'MQTT client connected'));
  aedes.on('clientDisconnect', (client) => log.debug({ clientId: client.id }, 'MQTT client disconnected'));
  aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'MQTT client error'));
  aedes.on('connectionError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'MQTT connection error'));

  // Sockets are tracked so close() also drops connections aedes does not
  // (yet) know as clients, e.g. ones that have not finished CONNECT.
  const sockets = new Set<net.Socket>();
  // No Nagle delay: MQTT control packets are small and latency-sensitive.
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
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
