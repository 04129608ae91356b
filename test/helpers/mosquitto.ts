/**
 * A real MQTT 5 broker for tests: a mosquitto child process (anonymous,
 * loopback, no persistence) on a port of its own, that can be killed and
 * restarted there. The embedded broker speaks MQTT 3.1.1 only; what needs
 * MQTT 5 (the ACS client libraries, the Sparkplug 5.0 rules) uses this.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './tools.js';

export interface RestartableBroker {
  url: string;
  port: number;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`Nothing listening on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `acl`: the text of a mosquitto ACL file, e.g. `pattern deny a/b\npattern readwrite #`
 * (`pattern` lines apply to every client, named or anonymous). Mosquitto
 * refuses a denied publish with PUBACK 0x87 under MQTT 5; it grants every
 * subscription and only withholds the messages.
 */
export async function spawnMosquitto(opts: { acl?: string } = {}): Promise<RestartableBroker> {
  const mosquitto = requireTool('mosquitto');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sp-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  let aclLine = '';
  if (opts.acl !== undefined) {
    // Run as root, mosquitto reads the ACL file after dropping to its own user.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'acl'), `${opts.acl}\n`, { mode: 0o644 });
    aclLine = `acl_file ${join(dir, 'acl')}\n`;
  }
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n${aclLine}`);
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn(mosquitto, ['-c', conf], { stdio: 'ignore' });
    child = c;
    await waitForPort(port);
    if (c.exitCode !== null) throw new Error(`mosquitto exited with ${c.exitCode}`);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    restart: async () => {
      await kill();
      await launch();
    },
    close: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
