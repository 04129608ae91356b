/**
 * A server closes a kept-alive connection as idle at the moment a client
 * sends its next request on it: the client sees ECONNRESET for a request the
 * server never read. A server on loopback that resets every connection on
 * its second request makes that moment happen every time.
 */
import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { send } from '../../src/lib/http-client.js';
import { gitRequest, readAll } from '../../src/repo/git-http.js';

/** Answers the first request of each connection (kept alive), resets the connection on the second. */
async function resettingServer(): Promise<{ url: string; requests: string[]; server: Server; sockets: Set<Socket> }> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let seen = 0;
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const head = buf.slice(0, buf.indexOf('\r\n\r\n'));
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        buf = buf.slice(length);
        seen++;
        if (seen === 2) {
          socket.resetAndDestroy();
          return;
        }
        requests.push(head.split('\r\n')[0]);
        const body = JSON.stringify({ n: requests.length });
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n${body}`,
        );
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests, server, sockets };
}

describe('kept-alive connections closed under a request', () => {
  let s: Awaited<ReturnType<typeof resettingServer>>;
  beforeEach(async () => {
    s = await resettingServer();
  });
  afterEach(async () => {
    for (const socket of s.sockets) socket.destroy();
    await new Promise<void>((r) => s.server.close(() => r()));
  });

  it('a service GET is sent again on a new connection and answered', async () => {
    const first = await send(new URL(`${s.url}/a`), { method: 'GET', headers: {}, timeoutMs: 5000 });
    expect(first.status).to.equal(200);
    const second = await send(new URL(`${s.url}/b`), { method: 'GET', headers: {}, timeoutMs: 5000 });
    expect(second.status).to.equal(200);
    expect(s.requests).to.deep.equal(['GET /a HTTP/1.1', 'GET /b HTTP/1.1']);
  });

  it('a service POST is not sent again: the reset is the caller’s to judge', async () => {
    await send(new URL(`${s.url}/a`), { method: 'GET', headers: {}, timeoutMs: 5000 });
    const err = await send(new URL(`${s.url}/c`), { method: 'POST', headers: {}, body: '{}', timeoutMs: 5000 }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).to.equal('ECONNRESET');
    expect(s.requests).to.deep.equal(['GET /a HTTP/1.1']);
  });

  it('a Git read (ref advertisement, status list) is sent again; a push is not', async () => {
    const get = async (path: string) => {
      const r = await gitRequest({ url: `${s.url}${path}`, timeoutMs: 5000 });
      await readAll(r.body);
      return r.statusCode;
    };
    expect(await get('/uuid/x/info/refs?service=git-upload-pack')).to.equal(200);
    expect(await get('/v1/status/x')).to.equal(200);
    const push = await gitRequest({
      url: `${s.url}/uuid/x/git-receive-pack`,
      method: 'POST',
      body: Buffer.from('0000'),
      timeoutMs: 5000,
    }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(push?.code).to.equal('ECONNRESET');
    expect(s.requests).to.deep.equal([
      'GET /uuid/x/info/refs?service=git-upload-pack HTTP/1.1',
      'GET /v1/status/x HTTP/1.1',
    ]);
  });
});
