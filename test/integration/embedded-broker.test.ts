import net from 'node:net';
import { expect } from 'chai';
import mqtt from 'mqtt';
import { startBroker, type EmbeddedBroker } from '../../src/embedded/broker/index.js';
import { silentLogger } from '../../src/lib/log.js';
import { connectClient, waitForEvent } from '../helpers/mqtt.js';

const GOOD = { username: 'svc-user', password: 'right password' };

function start(port = 0): Promise<EmbeddedBroker> {
  return startBroker({
    host: '127.0.0.1',
    port,
    authenticate: (u, p) => u === GOOD.username && p === GOOD.password,
    log: silentLogger,
  });
}

function refusal(p: Promise<unknown>): Promise<Error & { code?: unknown }> {
  return p.then(
    () => {
      throw new Error('connection was accepted');
    },
    (err: Error & { code?: unknown }) => err,
  );
}

describe('embedded MQTT broker', () => {
  let broker: EmbeddedBroker;
  const clients: mqtt.MqttClient[] = [];

  beforeEach(async () => {
    broker = await start();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker.close();
  });

  it('listens on an ephemeral loopback port and reports its URL', () => {
    expect(broker.port).to.be.greaterThan(0);
    expect(broker.url).to.equal(`mqtt://127.0.0.1:${broker.port}`);
  });

  it('accepts good credentials and delivers published messages', async () => {
    const sub = await connectClient(broker.url, GOOD);
    const pub = await connectClient(broker.url, GOOD);
    clients.push(sub, pub);
    await sub.subscribeAsync('test/+/data', { qos: 1 });
    const received = new Promise<[string, string]>((resolve) => {
      sub.once('message', (t, payload) => resolve([t, payload.toString()]));
    });
    await pub.publishAsync('test/a/data', 'hello', { qos: 1 });
    expect(await received).to.deep.equal(['test/a/data', 'hello']);
  });

  it('refuses a wrong password with CONNACK "not authorized"', async () => {
    const err = await refusal(connectClient(broker.url, { username: GOOD.username, password: 'wrong' }));
    expect(err.code).to.equal(5);
    expect(err.message).to.match(/not authorized/i);
  });

  it('refuses an unknown user', async () => {
    const err = await refusal(connectClient(broker.url, { username: 'nobody', password: GOOD.password }));
    expect(err.code).to.equal(5);
  });

  it('refuses missing credentials', async () => {
    expect((await refusal(connectClient(broker.url, {}))).code).to.equal(5);
    expect((await refusal(connectClient(broker.url, { username: GOOD.username }))).code).to.equal(5);
  });

  it('refuses the client when the authenticate callback throws', async () => {
    const throwing = await startBroker({
      host: '127.0.0.1',
      port: 0,
      authenticate: () => {
        throw new Error('auth backend down');
      },
      log: silentLogger,
    });
    try {
      expect((await refusal(connectClient(throwing.url, GOOD))).code).to.equal(5);
    } finally {
      await throwing.close();
    }
  });

  it('answers an MQTT 5 CONNECT with "unacceptable protocol version" (aedes speaks 3.1.1 only)', async () => {
    const err = await refusal(connectClient(broker.url, GOOD, { protocolVersion: 5 }));
    expect(err.code).to.equal(1);
    expect(err.message).to.match(/unacceptable protocol version/i);
  });

  it('disconnects connected clients when closed', async () => {
    const c = await connectClient(broker.url, GOOD);
    clients.push(c);
    const closed = waitForEvent(c, 'close');
    await broker.close();
    await closed;
    expect(c.connected).to.equal(false);
  });

  it('also drops connections that have not sent CONNECT yet', async () => {
    const socket = net.connect(broker.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await broker.close();
    await closed;
    expect(socket.destroyed).to.equal(true);
  });

  it('close() is idempotent and refuses new connections afterwards', async () => {
    await broker.close();
    await broker.close();
    const err = await refusal(connectClient(broker.url, GOOD));
    expect((err as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
  });

  it('lets clients reconnect to a broker restarted on the same port', async () => {
    const port = broker.port;
    const c = await connectClient(broker.url, GOOD, { reconnectPeriod: 100 });
    clients.push(c);
    const offline = waitForEvent(c, 'close');
    await broker.close();
    await offline;

    broker = await start(port);
    expect(broker.port).to.equal(port);
    await waitForEvent(c, 'connect');

    const other = await connectClient(broker.url, GOOD);
    clients.push(other);
    await other.subscribeAsync('after/restart', { qos: 1 });
    const got = new Promise<string>((resolve) => other.once('message', (_t, p) => resolve(p.toString())));
    await c.publishAsync('after/restart', 'again', { qos: 1 });
    expect(await got).to.equal('again');
  });
});
