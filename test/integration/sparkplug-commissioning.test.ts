/**
 * Commissioning as a Sparkplug host sees it: the whole stack (embedded core,
 * manager, HTTP API) with a test host subscribed to `spBv1.0/#` on the
 * embedded broker. One cluster is created through the Config Store, gets
 * secrets and a bootstrap fetch through the API, and is deleted again; every
 * message is decoded by the project codec and by Tahu's `sparkplug-payload`
 * (what Factory+ consumers use), and the two must agree.
 *
 * Issue acceptance: "Commissioning one cluster produces DBIRTH then DDATA
 * messages walking through the phases to `ready`, in order; deleting it
 * produces DDEATH."
 */
import { expect } from 'chai';
// Namespace import: the package is CommonJS with __esModule set, so its default export is not reliable.
import * as spPayload from 'sparkplug-payload';
import { parseTopic, type SparkplugMetric } from '../../src/lib/sparkplug/index.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { subscribe, type Received, type Subscriber } from '../helpers/mqtt.js';
import { waitFor } from '../helpers/processes.js';
import { DEVICE_METRICS } from '../helpers/sparkplug.js';
import { CLUSTER_DEVICE_SCHEMA_UUID } from '../../src/sparkplug/model.js';

const tahu = spPayload.get('spBv1.0')!;
type TahuPayload = ReturnType<typeof tahu.decodePayload>;

/** The commissioning phases in the order a cluster goes through them. */
const FORWARD = ['pending', 'address', 'accounts', 'repo', 'ready'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Long/number/bigint (either decoder) as a bigint. */
function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (v !== null && typeof v === 'object' && 'low' in v) return BigInt(String(v));
  throw new Error(`not an integer: ${String(v)}`);
}
const opt = (v: unknown): bigint | undefined => (v === undefined || v === null ? undefined : big(v));
const norm = (type: string, v: unknown): unknown => (type === 'Int64' || type === 'UInt64' ? opt(v) : (v ?? undefined));

/** One message of the Cluster Manager's node, decoded twice. */
interface Msg {
  index: number;
  type: string;
  device: string | undefined;
  ours: Received;
  tahu: TahuPayload;
  seq: number | undefined;
  metrics: SparkplugMetric[];
}

type Values = Record<string, unknown>;

describe('Sparkplug: commissioning a cluster end to end', function () {
  this.timeout(45_000);
  let s: ApiStack;
  let sub: Subscriber;
  let group: string;
  let node: string;
  /** Index in sub.messages of the first NBIRTH the host saw: the start of the checked stream. */
  let start = -1;
  let firstBdSeq: bigint;
  let C: string;
  let D: string;
  const cert = () => testCert('rsa');

  const nodeTopic = (type: string) => `spBv1.0/${group}/${type}/${node}`;

  /** The node's messages (not the host's own NCMDs), from index `from` of everything received. */
  const msgs = (from = start): Msg[] => {
    const out: Msg[] = [];
    sub.messages.forEach((r, index) => {
      if (index < from) return;
      const t = parseTopic(r.topic);
      if (!t || t.group !== group || t.node !== node || t.type === 'NCMD' || t.type === 'DCMD') return;
      expect(r.decodeError, `${r.topic}: project decoder`).to.equal(undefined);
      const tp = tahu.decodePayload(r.raw);
      out.push({
        index,
        type: t.type,
        device: t.device,
        ours: r,
        tahu: tp,
        seq: opt(r.payload!.seq) === undefined ? undefined : Number(r.payload!.seq),
        metrics: r.payload!.metrics ?? [],
      });
    });
    return out;
  };

  /** Both decoders read the same thing: seq, uuid, and every metric's name, alias, type and value. */
  const sameDecoding = (r: Received, at: string): void => {
    expect(r.decodeError, `${at}: project decoder`).to.equal(undefined);
    let tp: TahuPayload;
    try {
      tp = tahu.decodePayload(r.raw);
    } catch (e) {
      throw new Error(`${at}: sparkplug-payload cannot decode: ${(e as Error).message}`, { cause: e });
    }
    const p = r.payload!;
    expect(opt(tp.seq), `${at} seq`).to.equal(opt(p.seq));
    expect(opt(tp.timestamp), `${at} timestamp`).to.equal(opt(p.timestamp));
    expect(tp.uuid ?? undefined, `${at} uuid`).to.equal(p.uuid ?? undefined);
    const a = p.metrics ?? [];
    const b = tp.metrics ?? [];
    expect(b.length, `${at} metric count`).to.equal(a.length);
    a.forEach((m, i) => {
      const t = b[i]!;
      const what = `${at} metric ${m.name ?? String(m.alias)}`;
      expect(t.name ?? undefined, `${what} name`).to.equal(m.name);
      expect(opt(t.alias), `${what} alias`).to.equal(opt(m.alias));
      expect(t.type, `${what} type`).to.equal(m.type);
      expect(norm(String(t.type), t.value), `${what} value`).to.deep.equal(norm(m.type, m.value));
    });
  };

  /**
   * Sparkplug rules over the node's whole observed stream since the first
   * NBIRTH: seq 0 on NBIRTH, +1 mod 256 on everything else, no NDEATH;
   * births name, alias and type their metrics, aliases unique within the
   * session; DATA by alias only, each alias the device's own; a device's
   * DDATA/DDEATH only while it is born. Every message, of any node, must
   * decode identically with both decoders.
   */
  const checkStream = (): void => {
    sub.messages.forEach((r, i) => {
      if (parseTopic(r.topic)) sameDecoding(r, `message ${i} ${r.topic}`);
    });
    let expectSeq: number | undefined;
    let aliases = new Map<string, string>();
    let born = new Set<string>();
    const all = msgs();
    expect(all[0]?.type).to.equal('NBIRTH');
    for (const m of all) {
      const at = `message ${m.index} ${m.type}${m.device ? `/${m.device}` : ''}#${m.seq}`;
      expect(m.type, `${at}: the node died`).to.not.equal('NDEATH');
      if (m.type === 'NBIRTH') {
        expect(m.seq, `${at} seq`).to.equal(0);
        expect(big(m.metrics.find((x) => x.name === 'bdSeq')!.value), `${at} bdSeq`).to.equal(firstBdSeq);
        aliases = new Map();
        born = new Set();
      } else {
        expect(m.seq, `${at} seq`).to.equal(expectSeq);
      }
      expectSeq = (m.seq! + 1) % 256;
      if (m.type === 'NBIRTH' || m.type === 'DBIRTH') {
        if (m.type === 'DBIRTH') born.add(m.device!);
        for (const x of m.metrics) {
          expect(x.name, `${at} name`).to.be.a('string');
          if (x.name === 'bdSeq' || x.name === 'Node Control/Rebirth' || x.name === 'Device Control/Rebirth') continue;
          const a = String(big(x.alias));
          expect(aliases.has(a), `${at} alias ${a} of ${x.name} reused`).to.equal(false);
          aliases.set(a, `${m.device ?? ''}:${x.name}`);
        }
      }
      if (m.type === 'DDATA' || m.type === 'DDEATH') {
        expect(born.has(m.device!), `${at} without a DBIRTH`).to.equal(true);
        if (m.type === 'DDEATH') born.delete(m.device!);
      }
      if (m.type === 'NDATA' || m.type === 'DDATA') {
        expect(m.metrics.length, `${at} empty`).to.be.greaterThan(0);
        for (const x of m.metrics) {
          expect(x.name, `${at} carries a name`).to.equal(undefined);
          const owner = aliases.get(String(big(x.alias)));
          expect(owner, `${at} alias ${String(x.alias)}`).to.be.a('string');
          expect(owner!.startsWith(`${m.device ?? ''}:`), `${at} alias belongs to ${owner}`).to.equal(true);
        }
      }
    }
  };

  /** Metric values of a message by name, aliases resolved through `birth`. */
  const valuesOf = (m: Msg, birth: Msg | undefined): Values => {
    const byAlias = new Map(
      (birth?.metrics ?? []).filter((x) => x.alias !== undefined).map((x) => [String(big(x.alias)), x.name!]),
    );
    const out: Values = {};
    for (const x of m.metrics) {
      const name = x.name ?? byAlias.get(String(big(x.alias)));
      expect(name, `alias ${String(x.alias)} of message ${m.index} resolves`).to.be.a('string');
      out[name!] = x.value;
    }
    return out;
  };

  /** A device's births and data as a host follows them: each message with its own values and the values held after it. */
  const history = (device: string, from = start) => {
    let birth: Msg | undefined;
    let held: Values = {};
    return msgs()
      .filter((m) => m.device === device)
      .map((m) => {
        if (m.type === 'DBIRTH') {
          birth = m;
          held = {};
        }
        const own = m.type === 'DDEATH' ? {} : valuesOf(m, birth);
        held = m.type === 'DDEATH' ? {} : { ...held, ...own };
        return { m, own, held: { ...held } };
      })
      .filter((x) => x.m.index >= from);
  };

  /** The node's metrics as a host holds them after every message. */
  const nodeHistory = (from = start) => {
    let birth: Msg | undefined;
    let held: Values = {};
    return msgs(from)
      .filter((m) => m.type === 'NBIRTH' || m.type === 'NDATA')
      .map((m) => {
        if (m.type === 'NBIRTH') {
          birth = m;
          held = {};
        }
        held = { ...held, ...valuesOf(m, birth) };
        return { m, held: { ...held } };
      });
  };

  /** Waits until a condition over what has been received holds, re-checking on every message. */
  const until = async (what: string, check: () => boolean, ms = 15_000): Promise<void> => {
    await sub
      .waitFor(() => check(), ms)
      .catch(() => {
        throw new Error(`${what} within ${ms} ms`);
      });
  };

  const rebirth = async (): Promise<void> => {
    const payload = Buffer.from(
      tahu.encodePayload({
        timestamp: Date.now(),
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true, timestamp: Date.now() }],
      }),
    );
    await sub.client.publishAsync(nodeTopic('NCMD'), payload, { qos: 1 });
  };

  const configDelete = (cluster: string) =>
    fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${cluster}`, {
      method: 'DELETE',
      headers: { Authorization: s.admin },
    });

  before(async () => {
    cert();
    s = await startApiStack();
    const address = s.config.sparkplug.address ?? `${s.config.factoryplus.organisation}-Service-Core/Cluster_Manager`;
    [group, node] = address.split('/') as [string, string];
    sub = await subscribe(s.t.core.endpoints.mqtt, s.t.core.credentials.admin, 'spBv1.0/#');
    // The node was born before anyone could subscribe: a rebirth request makes it
    // birth again for this host, which is where the checked stream starts.
    await waitFor(() => s.m.node?.born, 10_000, undefined, 'node born');
    await rebirth();
    const nbirth = await sub.waitFor((r) => r.topic === nodeTopic('NBIRTH'), 10_000);
    start = sub.messages.indexOf(nbirth);
    firstBdSeq = big(nbirth.payload!.metrics!.find((x) => x.name === 'bdSeq')!.value);
    expect(firstBdSeq).to.equal(BigInt(s.m.node!.bdSeq!));
  });

  it("the node's Instance_UUID is the service account's own principal (whoami), not the service UUID", async () => {
    const held = nodeHistory()[0]!.held;
    const principal = await s.m.auth.whoami();
    expect(principal).to.match(/^[0-9a-f-]{36}$/);
    expect(held.Instance_UUID).to.equal(principal);
    expect(held.Instance_UUID).to.not.equal(s.config.uuids.service.clusterManager);
    expect(held.Service_UUID).to.equal(s.config.uuids.service.clusterManager);
  });
  after(async () => {
    await sub?.close();
    await s?.stop();
  });

  it('commissioning produces a DBIRTH, then DDATA walking forward through the phases to ready', async () => {
    const birthCounts = nodeHistory()[0]!.held;
    expect(birthCounts['Clusters/total']).to.equal(BigInt(s.m.status.size));
    const readyBefore = birthCounts['Clusters/ready'] as bigint;

    C = await s.createCluster('sp_commissioning');
    const head = (s.m.status.get(C)!.repo as { head: string }).head;
    expect(head).to.match(/^[0-9a-f]{40}$/);
    await until('the device reaches Ready=true', () => history(C).at(-1)?.held.Ready === true);
    await sleep(200);

    const h = history(C);
    expect(h[0]!.m.type, 'first message of the device').to.equal('DBIRTH');
    expect(
      h.filter((x) => x.m.type === 'DBIRTH'),
      'DBIRTHs',
    ).to.have.length(1);
    expect(
      h
        .slice(1)
        .map((x) => x.m.type)
        .every((t) => t === 'DDATA'),
      h.map((x) => x.m.type).join(),
    ).to.equal(true);
    expect(h[0]!.m.ours.topic).to.equal(`spBv1.0/${group}/DBIRTH/${node}/${C}`);

    // DBIRTH: every metric by name, with an alias and its type.
    const birth = h[0]!.m;
    expect(birth.metrics.map((x) => [x.name, x.type])).to.deep.equal(DEVICE_METRICS);
    for (const x of birth.metrics) {
      if (x.name === 'Device Control/Rebirth') expect(opt(x.alias), `${x.name} alias`).to.equal(undefined);
      else expect(opt(x.alias), `${x.name} alias`).to.be.a('bigint');
    }
    expect(h[0]!.own.Name).to.equal('sp_commissioning');
    expect(h[0]!.own.Cluster_UUID).to.equal(C);
    // An ACS consumer identifies the device by its Schema_UUID and Instance_UUID: the cluster object.
    expect(h[0]!.own.Instance_UUID).to.equal(C);
    expect(h[0]!.own.Schema_UUID).to.equal(CLUSTER_DEVICE_SCHEMA_UUID);

    // Phases: forward only (updates may coalesce, so some may be skipped), ending at ready.
    const phases = h.filter((x) => x.own.Phase !== undefined).map((x) => x.own.Phase as string);
    for (const p of phases) expect(FORWARD, `phase ${p}`).to.include(p);
    const idx = phases.map((p) => FORWARD.indexOf(p));
    for (let i = 1; i < idx.length; i++) expect(idx[i], `phases ${phases.join(' → ')}`).to.be.greaterThan(idx[i - 1]!);
    expect(phases.at(-1)).to.equal('ready');
    expect(phases.length, `phases ${phases.join(' → ')}`).to.be.at.least(2);
    // Ready only ever appears together with phase ready.
    for (const x of h) if (x.held.Ready === true) expect(x.held.Phase).to.equal('ready');

    const last = h.at(-1)!.held;
    expect(last.Ready).to.equal(true);
    expect(last.Repo_Head).to.equal(head);
    const conds = JSON.parse(last.Conditions as string) as { type: string; status: string }[];
    expect(conds.find((c) => c.type === 'Ready')?.status).to.equal('True');
    expect(last.Sealed_Secrets).to.equal(0n);
    expect(last.Bootstrap_Fetches).to.equal(0n);

    // The node's counts follow (throttled to one update a second).
    await until(
      'Clusters/ready counts the new cluster',
      () => {
        const n = nodeHistory().at(-1)!.held;
        return n['Clusters/ready'] === readyBefore + 1n && n['Clusters/total'] === BigInt(s.m.status.size);
      },
      5000,
    );
    expect(
      nodeHistory()
        .slice(1)
        .every((x) => x.m.type === 'NDATA'),
    ).to.equal(true);
    checkStream();
  });

  it('sealing a secret and fetching the bootstrap script show up as DDATA', async () => {
    const from = sub.messages.length;
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${C}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: cert().certPem }),
    });
    expect(r.status).to.be.oneOf([200, 201, 204]);
    const put = await fetch(`${s.url}/v1/cluster/${C}/secret/sp-ns/sp-secret/password`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/octet-stream' },
      body: 's3cret',
    });
    expect(put.status, await put.text()).to.equal(204);
    const u = await fetch(`${s.url}/v1/cluster/${C}/bootstrap-url`, {
      method: 'POST',
      headers: { Authorization: s.admin },
    });
    expect(u.status).to.equal(200);
    const script = await fetch((await u.json()) as string);
    expect(script.status, await script.clone().text()).to.equal(200);
    expect((await script.text()).length).to.be.greaterThan(0);

    await until('DDATA with Sealed_Secrets=1 and Bootstrap_Fetches=1', () => {
      const held = history(C).at(-1)?.held;
      return held?.Sealed_Secrets === 1n && held?.Bootstrap_Fetches === 1n;
    });
    const since = history(C).filter((x) => x.m.index >= from);
    expect(since.length).to.be.at.least(1);
    expect(
      since.every((x) => x.m.type === 'DDATA'),
      since.map((x) => x.m.type).join(),
    ).to.equal(true);
    expect(
      since.some((x) => x.own.Sealed_Secrets === 1n),
      'a DDATA carries Sealed_Secrets=1',
    ).to.equal(true);
    expect(
      since.some((x) => x.own.Bootstrap_Fetches === 1n),
      'a DDATA carries Bootstrap_Fetches=1',
    ).to.equal(true);
    // Neither counter went anywhere else on the way.
    for (const x of since) {
      if (x.own.Sealed_Secrets !== undefined) expect(x.own.Sealed_Secrets).to.equal(1n);
      if (x.own.Bootstrap_Fetches !== undefined) expect(x.own.Bootstrap_Fetches).to.equal(1n);
    }
    const held = history(C).at(-1)!.held;
    expect(held.Ready).to.equal(true);
    expect(held.Phase).to.equal('ready');
    checkStream();
  });

  it('NCMD Node Control/Rebirth yields NBIRTH then a DBIRTH for every live cluster, same bdSeq', async () => {
    D = await s.createCluster('sp_other');
    await until('the second device reaches Ready=true', () => history(D).at(-1)?.held.Ready === true);
    // The node's counts are refreshed at most once a second; let them catch up so the NBIRTH can be compared.
    await until(
      'Clusters/total counts both clusters',
      () => nodeHistory().at(-1)!.held['Clusters/total'] === BigInt(s.m.status.size),
      5000,
    );
    const from = sub.messages.length;
    await rebirth();
    const live = s.m.status.clusters();
    expect(live).to.include.members([C, D]);
    await until(`NBIRTH and ${live.length} DBIRTHs`, () => {
      const after = msgs(from);
      const i = after.findIndex((m) => m.type === 'NBIRTH');
      return i >= 0 && after.length >= i + 1 + live.length;
    });
    const after = msgs(from);
    const i = after.findIndex((m) => m.type === 'NBIRTH');
    const rb = after.slice(i, i + 1 + live.length);
    expect(rb.map((m) => [m.type, m.seq])).to.deep.equal([['NBIRTH', 0], ...live.map((_, k) => ['DBIRTH', k + 1])]);
    expect(
      rb
        .slice(1)
        .map((m) => m.device)
        .sort(),
    ).to.deep.equal([...live].sort());
    // Same session: the bdSeq of the first NBIRTH, by both decoders.
    expect(big(rb[0]!.metrics.find((x) => x.name === 'bdSeq')!.value)).to.equal(firstBdSeq);
    expect(big(rb[0]!.tahu.metrics!.find((x) => x.name === 'bdSeq')!.value)).to.equal(firstBdSeq);
    // The births carry the current state.
    const nb = valuesOf(rb[0]!, undefined);
    expect(nb['Clusters/total']).to.equal(BigInt(live.length));
    const dc = valuesOf(
      rb.find((m) => m.device === C)!,
      undefined,
    );
    expect(dc).to.include({
      Name: 'sp_commissioning',
      Cluster_UUID: C,
      Phase: 'ready',
      Ready: true,
      Sealed_Secrets: 1n,
      Bootstrap_Fetches: 1n,
    });
    expect(dc.Repo_Head).to.be.a('string').and.not.equal('');
    checkStream();
  });

  it('deleting the configuration entry gives DDATA phase deleting, then DDEATH, then nothing more for that device', async () => {
    const from = sub.messages.length;
    const r = await configDelete(C);
    expect(r.status).to.be.oneOf([200, 204]);
    await until(
      'DDEATH for the deleted cluster',
      () => msgs(from).some((m) => m.type === 'DDEATH' && m.device === C),
      20_000,
    );
    const h = history(C, from);
    const death = h.findIndex((x) => x.m.type === 'DDEATH');
    expect(death).to.be.greaterThan(0);
    expect(h[death]!.m.ours.topic).to.equal(`spBv1.0/${group}/DDEATH/${node}/${C}`);
    const before = h.slice(0, death);
    expect(
      before.every((x) => x.m.type === 'DDATA'),
      before.map((x) => x.m.type).join(),
    ).to.equal(true);
    expect(
      before.some((x) => x.own.Phase === 'deleting'),
      'a DDATA with Phase=deleting',
    ).to.equal(true);
    const deleting = before.find((x) => x.own.Phase === 'deleting')!;
    expect(deleting.held.Ready).to.equal(false);
    // Once deleting, the phase does not go back.
    for (const x of before.slice(before.indexOf(deleting)))
      if (x.own.Phase !== undefined) expect(x.own.Phase).to.equal('deleting');

    // Let the throttled counts and anything late arrive.
    await until(
      'node counts without the deleted cluster',
      () => {
        const n = nodeHistory().at(-1)!.held;
        return n['Clusters/total'] === BigInt(s.m.status.size) && n['Clusters/deleting'] === 0n;
      },
      5000,
    );
    await sleep(1200);
    const afterDeath = msgs(h[death]!.m.index + 1).filter((m) => m.device === C);
    expect(
      afterDeath.map((m) => m.type),
      'messages for the device after its DDEATH',
    ).to.deep.equal([]);
    expect(s.m.status.get(C)).to.equal(undefined);
    expect(history(D).at(-1)!.held.Ready, 'the other cluster is untouched').to.equal(true);

    // A rebirth now births only the live cluster.
    const from2 = sub.messages.length;
    await rebirth();
    await until('NBIRTH and one DBIRTH', () => {
      const a = msgs(from2);
      const i = a.findIndex((m) => m.type === 'NBIRTH');
      return i >= 0 && a.length >= i + 2;
    });
    await sleep(300);
    const a = msgs(from2);
    const i = a.findIndex((m) => m.type === 'NBIRTH');
    expect(
      a
        .slice(i)
        .filter((m) => m.type === 'DBIRTH')
        .map((m) => m.device),
    ).to.deep.equal([D]);
    expect(a.some((m) => m.device === C)).to.equal(false);
    checkStream();
  });
});
