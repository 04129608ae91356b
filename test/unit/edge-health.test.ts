import { expect } from 'chai';
import { applyMergePatch, type Json } from '../../src/lib/merge-patch.js';
import {
  describeEdgeCertificate,
  EDGE_CONDITION,
  edgeCondition,
  edgePatch,
  NOT_REPORTED,
  summariseEdge,
} from '../../src/reconcile/edge-health.js';
import { getCondition, readStatus } from '../../src/reconcile/setup-status.js';
import type { Status } from '../../src/reconcile/status.js';
import { openssl, testCert } from '../helpers/certs.js';

/** Fingerprint and expiry as OpenSSL reads them: the independent judge of the certificate summary. */
function opensslView(certPath: string): { fingerprint: string; notAfter: string } {
  const out = openssl(['x509', '-in', certPath, '-noout', '-fingerprint', '-sha256', '-enddate']).toString();
  const fp = /Fingerprint=([0-9A-F:]+)/i.exec(out)![1]!;
  const end = /notAfter=(.+)/.exec(out)![1]!;
  return { fingerprint: fp.replaceAll(':', '').toLowerCase(), notAfter: new Date(end).toISOString() };
}

/** A node as acs-edge-sync lib/nodes.js reports it. */
const host = (over: Record<string, unknown> = {}) => ({
  hostname: 'edge-1',
  arch: 'amd64',
  k8s_version: 'v1.31.4+k3s1',
  control_plane: true,
  os_version: 'Ubuntu 24.04.1 LTS',
  ready: true,
  ...over,
});

describe('Edge health summary', () => {
  it('counts hosts and ready hosts and lists distinct kubelet versions, sorted', () => {
    const r = summariseEdge({
      hosts: [
        host(),
        host({
          hostname: 'edge-2',
          k8s_version: 'v1.30.6+k3s1',
          control_plane: false,
          ready: false,
          specialised: 'gpu',
        }),
        host({ hostname: 'edge-3' }),
      ],
    });
    expect(r).to.deep.equal({
      reported: true,
      hosts: 3,
      readyHosts: 2,
      kubernetesVersions: ['v1.30.6+k3s1', 'v1.31.4+k3s1'],
      sealingCertificate: null,
    });
  });

  it('takes odd entries without throwing: not an object, hosts not an array, hosts that are not objects, fields of the wrong type', () => {
    for (const entry of [undefined, null, 'hosts', 42, [], [host()]])
      expect(summariseEdge(entry), JSON.stringify(entry)).to.deep.equal(NOT_REPORTED);
    for (const hosts of [undefined, null, 'edge-1', 3, { 0: host() }]) {
      expect(summariseEdge({ hosts }), JSON.stringify(hosts)).to.deep.equal(NOT_REPORTED);
    }
    const r = summariseEdge({
      hosts: [
        null,
        'edge-1',
        7,
        [host()],
        {},
        host({ ready: 'true', k8s_version: 131 }),
        host({ ready: 1, k8s_version: '' }),
      ],
    });
    // Only the three objects count; none says ready: true, none has a usable version.
    expect(r).to.deep.equal({
      reported: true,
      hosts: 3,
      readyHosts: 0,
      kubernetesVersions: [],
      sealingCertificate: null,
    });
    // A host without the labels Edge Sync reads (hostname undefined, so absent from JSON) is still a host.
    expect(summariseEdge({ hosts: [{ ready: true }] })).to.include({ hosts: 1, readyHosts: 1 });
    // Edge Sync has reported an empty node list: reported, with nothing in it.
    expect(summariseEdge({ hosts: [] })).to.deep.equal({ ...NOT_REPORTED, reported: true });
  });

  it('bounds what an entry can make the status hold: at most 16 versions of at most 64 characters', () => {
    const hosts = Array.from({ length: 40 }, (_, i) => host({ k8s_version: `v1.${String(i).padStart(2, '0')}.0` }));
    hosts.push(host({ k8s_version: `v${'9'.repeat(100)}` }));
    const r = summariseEdge({ hosts });
    expect(r.hosts).to.equal(41);
    expect(r.kubernetesVersions).to.have.length(16);
    expect(r.kubernetesVersions[0]).to.equal('v1.00.0');
    expect(r.kubernetesVersions.every((v) => v.length <= 64)).to.equal(true);
  });

  it('describes the sealing certificate by SHA-256 fingerprint and expiry, as OpenSSL reads them, an expired one included', () => {
    for (const kind of ['rsa', 'rsa-subject', 'expired'] as const) {
      const c = testCert(kind);
      expect(summariseEdge({ kubeseal_cert: c.certPem }).sealingCertificate, kind).to.deep.equal(
        opensslView(c.certPath),
      );
    }
    // An edge that has sent its certificate but not its hosts has not reported.
    expect(summariseEdge({ kubeseal_cert: testCert('rsa').certPem }).reported).to.equal(false);
  });

  it('gives no certificate for one that cannot seal or is not one', () => {
    for (const pem of [
      testCert('ec').certPem,
      'not a PEM',
      '',
      42,
      { pem: 'x' },
      `${testCert('rsa').certPem}${'x'.repeat(70_000)}`,
    ]) {
      expect(describeEdgeCertificate(pem)).to.equal(null);
      expect(summariseEdge({ hosts: [host()], kubeseal_cert: pem }).sealingCertificate).to.equal(null);
    }
  });
});

describe('EdgeReporting condition', () => {
  it('is False NotReported before any report, saying whether the bootstrap script was fetched', () => {
    const before = edgeCondition(NOT_REPORTED, 0);
    expect(before).to.include({ type: EDGE_CONDITION, status: 'False', reason: 'NotReported' });
    expect(before.message).to.match(/not been fetched/);
    const after = edgeCondition(NOT_REPORTED, 2);
    expect(after).to.include({ status: 'False', reason: 'NotReported' });
    expect(after.message).to.match(/since its bootstrap script was fetched/);
  });

  it('is False NoReadyHosts when hosts are reported but none is ready, True Reporting otherwise', () => {
    expect(edgeCondition(summariseEdge({ hosts: [host({ ready: false }), host({ ready: false })] }), 1)).to.deep.equal({
      type: EDGE_CONDITION,
      status: 'False',
      reason: 'NoReadyHosts',
      message: 'Edge Sync reports 2 hosts, none of them ready',
    });
    expect(edgeCondition(summariseEdge({ hosts: [] }), 1)).to.include({
      status: 'False',
      reason: 'NoReadyHosts',
      message: 'Edge Sync reports no hosts',
    });
    expect(edgeCondition(summariseEdge({ hosts: [host(), host({ ready: false })] }), 0)).to.deep.equal({
      type: EDGE_CONDITION,
      status: 'True',
      reason: 'Reporting',
      message: '1 of 2 hosts ready',
    });
  });
});

describe('Edge health patch', () => {
  const T0 = new Date('2026-01-01T00:00:00Z');
  const T1 = new Date('2026-01-02T00:00:00Z');
  const ready = (): Status => ({
    phase: 'ready',
    ready: true,
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Commissioned',
        message: 'repo at abc',
        lastTransitionTime: 'x',
        extra: 1,
      },
    ],
  });
  const apply = (st: Status, p: Json | undefined): Status =>
    p === undefined ? st : (applyMergePatch(st, p) as Status);

  it('writes a ready cluster once, and nothing while the report is unchanged', () => {
    const report = summariseEdge({ hosts: [host()], kubeseal_cert: testCert('rsa').certPem });
    const p = edgePatch(ready(), report, T0);
    expect(p).to.not.equal(undefined);
    const st = apply(ready(), p);
    const read = readStatus(st)!;
    expect(read.edge).to.deep.equal({ ...report, lastChange: T0.toISOString() });
    expect(getCondition(read, EDGE_CONDITION)).to.include({
      status: 'True',
      reason: 'Reporting',
      lastTransitionTime: T0.toISOString(),
    });
    // The Ready condition passes through as written, fields this module does not know included.
    expect((st.conditions as Json[])[0]).to.deep.equal((ready().conditions as Json[])[0]);
    expect(edgePatch(st, summariseEdge({ hosts: [host()], kubeseal_cert: testCert('rsa').certPem }), T1)).to.equal(
      undefined,
    );
  });

  it('moves lastChange and the transition time only when what they describe changes', () => {
    const st0 = apply(ready(), edgePatch(ready(), summariseEdge({ hosts: [host(), host()] }), T0));
    const st1 = apply(st0, edgePatch(st0, summariseEdge({ hosts: [host(), host({ ready: false })] }), T1));
    const read = readStatus(st1)!;
    expect(read.edge!.lastChange).to.equal(T1.toISOString());
    expect(read.edge!.readyHosts).to.equal(1);
    const c = getCondition(read, EDGE_CONDITION)!;
    expect(c.message).to.equal('1 of 2 hosts ready');
    expect(c.lastTransitionTime).to.equal(T0.toISOString());
  });

  it('restores the condition when another writer replaced the conditions, without touching the summary', () => {
    const report = summariseEdge({ hosts: [host()] });
    const st = apply(ready(), edgePatch(ready(), report, T0));
    const wiped = apply(st, {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Commissioned', message: 'm', lastTransitionTime: 'y' }],
    });
    const p = edgePatch(wiped, report, T1) as Record<string, Json>;
    expect(Object.keys(p)).to.deep.equal(['conditions']);
  });

  it('writes a removed certificate as a removal, read back as null', () => {
    const st = apply(
      ready(),
      edgePatch(ready(), summariseEdge({ hosts: [host()], kubeseal_cert: testCert('rsa').certPem }), T0),
    );
    const st2 = apply(st, edgePatch(st, summariseEdge({ hosts: [host()] }), T1));
    expect(readStatus(st2)!.edge!.sealingCertificate).to.equal(null);
    expect(edgePatch(st2, summariseEdge({ hosts: [host()] }), T1)).to.equal(undefined);
  });

  it('leaves clusters being commissioned alone until they are ready or their edge reports, and never writes one being deleted', () => {
    expect(edgePatch({ phase: 'accounts', ready: false }, NOT_REPORTED, T0)).to.equal(undefined);
    expect(edgePatch({ phase: 'failed', ready: false }, NOT_REPORTED, T0)).to.equal(undefined);
    const p = edgePatch({ phase: 'failed', ready: false }, summariseEdge({ hosts: [host()] }), T0);
    expect(p).to.have.property('edge');
    expect(edgePatch({ phase: 'deleting', ready: false }, summariseEdge({ hosts: [host()] }), T0)).to.equal(undefined);
    const first = edgePatch(ready(), NOT_REPORTED, T0) as Record<string, Json>;
    expect(first.edge).to.deep.include({ reported: false, lastChange: null });
  });
});
