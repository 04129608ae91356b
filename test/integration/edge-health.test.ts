/**
 * Edge health end to end: the embedded core, the manager and its HTTP API,
 * with the cluster's *Edge cluster status* entry written through the Config
 * Store's HTTP API as Edge Sync writes it (acs-edge-sync `lib/kubeseal.js`
 * PUTs `{kubeseal_cert}` when there is no entry yet, `lib/nodes.js` merge
 * PATCHes `{hosts}`). The Sparkplug device is read by a host subscribed to
 * the broker and decoded with Tahu's `sparkplug-payload`, and the
 * certificate's fingerprint and expiry are read by node:crypto's X509Certificate.
 *
 * Issue acceptance: "Writing an Edge cluster status entry with hosts flips
 * `EdgeReporting` to True within seconds, and the Sparkplug device shows it."
 */
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect } from 'chai';
// Namespace import: the package is CommonJS with __esModule set, so its default export is not reliable.
import * as spPayload from 'sparkplug-payload';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { waitFor } from '../helpers/processes.js';

const tahu = spPayload.get('spBv1.0')!;

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
}
interface Edge {
  reported: boolean;
  hosts: number;
  readyHosts: number;
  kubernetesVersions: string[];
  sealingCertificate?: { fingerprint: string; notAfter: string } | null;
  lastChange?: string | null;
}
interface StatusBody {
  phase: string;
  conditions: Cond[];
  edge?: Edge;
}

/** Nodes as acs-edge-sync lib/nodes.js reports them. */
const HOSTS = [
  {
    hostname: 'edge-cp-1',
    arch: 'amd64',
    k8s_version: 'v1.31.4+k3s1',
    control_plane: true,
    os_version: 'Ubuntu 24.04.1 LTS',
    ready: true,
  },
  {
    hostname: 'edge-w-1',
    arch: 'arm64',
    k8s_version: 'v1.30.6+k3s1',
    control_plane: false,
    os_version: 'Ubuntu 22.04.5 LTS',
    ready: true,
    specialised: 'gpu',
  },
  // A node whose kubelet has not posted a Ready condition: Edge Sync's `ready` is undefined, so absent from the JSON.
  {
    hostname: 'edge-w-2',
    arch: 'arm64',
    k8s_version: 'v1.31.4+k3s1',
    control_plane: false,
    os_version: 'Ubuntu 22.04.5 LTS',
  },
];

/** A Long (sparkplug-payload's 64-bit integers), number or bigint as a bigint. */
function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (v !== null && typeof v === 'object' && 'low' in v) return BigInt(String(v));
  throw new Error(`not an integer: ${String(v)}`);
}

describe('Edge health from the Edge cluster status entry', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let sub: Subscriber;
  let C: string;
  let edgeUrl: string;
  /** The manager's log lines. */
  const logged: Array<{ msg: string; cluster?: string; name?: string; reason?: string; was?: string }> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) logged.push(JSON.parse(l));
      done();
    },
  });
  const edgeLines = () => logged.filter((l) => l.cluster === C && l.msg.startsWith('Edge cluster'));

  const edgeSync = (method: 'PUT' | 'PATCH' | 'DELETE', body?: unknown) =>
    fetch(edgeUrl, {
      method,
      headers: {
        Authorization: s.admin,
        'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const status = async (): Promise<StatusBody> => {
    const r = await fetch(`${s.url}/v1/cluster/${C}/status`, { headers: { Authorization: s.admin } });
    expect(r.status).to.equal(200);
    return (await r.json()) as StatusBody;
  };
  const edgeCond = (st: StatusBody) => st.conditions.find((c) => c.type === 'EdgeReporting');
  /** The setup status entry in the Config Store: its ETag moves on every write. */
  const storedEtag = async (): Promise<string | null> => {
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.setupStatus}/object/${C}`, {
      headers: { Authorization: s.admin },
    });
    expect(r.status).to.equal(200);
    return r.headers.get('etag');
  };

  /** The device's metric values as a host holds them: DBIRTH names, then DDATA by alias, decoded by sparkplug-payload. */
  const device = (): Record<string, unknown> => {
    const held: Record<string, unknown> = {};
    const names = new Map<string, string>();
    for (const m of sub.messages) {
      const parts = m.topic.split('/');
      if (parts[4] !== C) continue;
      const p = tahu.decodePayload(m.raw);
      if (parts[2] === 'DBIRTH') {
        names.clear();
        for (const k of Object.keys(held)) delete held[k];
        for (const x of p.metrics ?? [])
          if (x.alias !== undefined && x.alias !== null) names.set(String(big(x.alias)), x.name!);
      }
      if (parts[2] !== 'DBIRTH' && parts[2] !== 'DDATA') continue;
      for (const x of p.metrics ?? [])
        held[x.name ?? names.get(String(big(x.alias)))!] = x.type === 'UInt64' ? big(x.value) : x.value;
    }
    return held;
  };

  before(async () => {
    testCert('rsa');
    s = await startApiStack({ log: pino({ level: 'info' }, sink) });
    edgeUrl = `${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/`;
    sub = await subscribe(s.t.core.endpoints.mqtt, s.t.core.credentials.admin, 'spBv1.0/#');
    C = await s.createCluster('edge_health');
    edgeUrl += C;
  });
  after(async () => {
    await sub?.close();
    await s?.stop();
  });

  it('a ready cluster whose edge has not reported has EdgeReporting False (NotReported) and an empty summary', async () => {
    await waitFor(
      async () => edgeCond(await status())?.reason === 'NotReported',
      5000,
      undefined,
      'EdgeReporting NotReported',
    );
    const st = await status();
    expect(edgeCond(st)).to.include({ status: 'False', reason: 'NotReported' });
    expect(edgeCond(st)!.message).to.match(/bootstrap script has not been fetched/);
    expect(st.edge).to.deep.include({ reported: false, hosts: 0, readyHosts: 0, kubernetesVersions: [] });
    expect(st.edge?.sealingCertificate ?? null).to.equal(null);
    // Commissioning's own condition is kept beside it.
    expect(st.conditions.find((c) => c.type === 'Ready')?.status).to.equal('True');
  });

  it('hosts written as Edge Sync writes them flip EdgeReporting to True within seconds, with the right summary', async () => {
    const cert = testCert('rsa').certPem;
    expect((await edgeSync('PUT', { kubeseal_cert: cert })).status).to.be.oneOf([201, 204]);
    const started = Date.now();
    expect((await edgeSync('PATCH', { hosts: HOSTS })).status).to.equal(204);
    await waitFor(async () => edgeCond(await status())?.status === 'True', 5000, undefined, 'EdgeReporting True');
    const took = Date.now() - started;
    const st = await status();
    expect(edgeCond(st)).to.include({ status: 'True', reason: 'Reporting', message: '2 of 3 hosts ready' });
    const x509 = new X509Certificate(cert);
    expect(st.edge).to.deep.equal({
      reported: true,
      hosts: 3,
      readyHosts: 2,
      kubernetesVersions: ['v1.30.6+k3s1', 'v1.31.4+k3s1'],
      sealingCertificate: {
        fingerprint: x509.fingerprint256.replaceAll(':', '').toLowerCase(),
        notAfter: new Date(x509.validTo).toISOString(),
      },
      lastChange: st.edge!.lastChange,
    });
    expect(Date.parse(st.edge!.lastChange!)).to.be.within(started - 1000, Date.now());
    console.log(`      EdgeReporting True ${took} ms after the hosts were written`);

    // One log line for the change, naming the cluster; none for its first NotReported.
    expect(edgeLines().map((l) => [l.name, l.was, l.reason, l.msg])).to.deep.equal([
      ['edge_health', 'NotReported', 'Reporting', 'Edge cluster: 2 of 3 hosts ready'],
    ]);

    const list = (await (await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } })).json()) as Array<{
      uuid: string;
      edge: Edge | null;
    }>;
    expect(list.find((c) => c.uuid === C)!.edge).to.deep.equal(st.edge);
  });

  it('the Sparkplug device shows what the edge reported', async () => {
    await waitFor(
      () => device()['Edge/Reported'] === true && device()['Edge/Ready_Hosts'] === 2n,
      5000,
      undefined,
      'device shows the edge',
    );
    expect(device()).to.include({
      'Edge/Reported': true,
      'Edge/Hosts': 3n,
      'Edge/Ready_Hosts': 2n,
      'Edge/Kubernetes_Versions': 'v1.30.6+k3s1, v1.31.4+k3s1',
    });
    const conds = JSON.parse(device().Conditions as string) as Cond[];
    expect(conds.find((c) => c.type === 'EdgeReporting')).to.include({ status: 'True', reason: 'Reporting' });
  });

  it('a rewrite that changes nothing the summary shows writes nothing to the setup status', async () => {
    const etag = await storedEtag();
    let changes = 0;
    const off = s.m.status.onChange((cluster) => {
      if (cluster === C) changes++;
    });
    try {
      // A node's OS upgraded: the entry changes, the notification comes, the summary does not change.
      const reads = s.m.edge.stats.reads;
      expect(
        (await edgeSync('PATCH', { hosts: HOSTS.map((h) => ({ ...h, os_version: 'Ubuntu 24.04.2 LTS' })) })).status,
      ).to.equal(204);
      await waitFor(() => s.m.edge.stats.reads > reads, 5000, undefined, 'the entries read again');
      // The same hosts written again, and the read every resync makes.
      expect((await edgeSync('PATCH', { hosts: HOSTS })).status).to.equal(204);
      await s.m.edge.refresh();
      expect(s.m.edge.stats.reads).to.be.at.least(reads + 2);
      await new Promise((r) => setTimeout(r, 500));
      await s.m.status.flush();
      expect(changes).to.equal(0);
      expect(await storedEtag()).to.equal(etag);
    } finally {
      off();
    }
  });

  it('no ready host is NoReadyHosts; a removed entry is NotReported again, with the summary emptied', async () => {
    expect((await edgeSync('PATCH', { hosts: HOSTS.map((h) => ({ ...h, ready: false })) })).status).to.equal(204);
    await waitFor(async () => edgeCond(await status())?.reason === 'NoReadyHosts', 5000, undefined, 'NoReadyHosts');
    expect(edgeCond(await status())!.message).to.equal('Edge Sync reports 3 hosts, none of them ready');
    await waitFor(() => device()['Edge/Ready_Hosts'] === 0n, 5000, undefined, 'device shows no ready host');

    expect((await edgeSync('DELETE')).status).to.equal(204);
    await waitFor(async () => edgeCond(await status())?.reason === 'NotReported', 5000, undefined, 'NotReported again');
    const st = await status();
    expect(st.edge).to.deep.include({ reported: false, hosts: 0, readyHosts: 0, kubernetesVersions: [] });
    expect(st.edge?.sealingCertificate ?? null).to.equal(null);
    await waitFor(() => device()['Edge/Reported'] === false, 5000, undefined, 'device shows no report');
  });
});
