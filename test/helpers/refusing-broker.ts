/**
 * A real MQTT 3.1.1 broker (aedes, loopback, port 0) whose ACL refuses the
 * subscriptions and publishes a test chooses, as a broker with a missing
 * grant does: a refused subscription gets SUBACK 0x80, and a refused
 * publish closes the connection (MQTT 3.1.1 has no negative PUBACK).
 * Anyone may connect. The rules can change while clients are connected.
 */
import net from 'node:net';
import { Aedes, type Client } from 'aedes';

export interface RefusingBroker {
  url: string;
  /** CONNECTs accepted so far. */
  connections: number;
  /** Filters subscribed to (granted or not), in order. */
  subscribeAttempts: string[];
  /** Topics published to by clients (refused or not), in order; wills excluded. */
  publishAttempts: string[];
  refuseSubscribe: (topic: string) => boolean;
  refusePublish: (topic: string) => boolean;
  /** Drops every client's connection, as a broker restart would. */
  dropClients(): void;
  close(): Promise<void>;
}

export async function startRefusingBroker(
  rules: { refuseSubscribe?: (topic: string) => boolean; refusePublish?: (topic: string) => boolean } = {},
): Promise<RefusingBroker> {
  const clients = new Set<Client>();
  const b: RefusingBroker = {
    url: '',
    connections: 0,
    subscribeAttempts: [],
    publishAttempts: [],
    refuseSubscribe: rules.refuseSubscribe ?? (() => false),
    refusePublish: rules.refusePublish ?? (() => false),
    dropClients: () => {
      for (const c of clients) c.close();
    },
    close: async () => undefined,
  };
  const aedes = await Aedes.createBroker({
    // A null subscription is aedes' way of answering SUBACK 0x80.
    authorizeSubscribe: (_client, sub, done) => {
      b.subscribeAttempts.push(sub.topic);
      done(null, b.refuseSubscribe(sub.topic) ? null : sub);
    },
    authorizePublish: (client, packet, done) => {
      // aedes also asks about a client's will when it dies; only client publishes count.
      if (client && !client.closed) b.publishAttempts.push(packet.topic);
      done(b.refusePublish(packet.topic) ? new Error('publish not authorized') : null);
    },
  });
  aedes.on('client', (c) => {
    b.connections++;
    clients.add(c);
  });
  aedes.on('clientDisconnect', (c) => clients.delete(c));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  b.url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  b.close = async () => {
    const closed = new Promise<void>((res) => server.close(() => res()));
    await new Promise<void>((res) => aedes.close(() => res()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return b;
}
