import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../src/lib/log.js';
import { BdSeqStore } from '../../src/sparkplug/bdseq.js';
import { NodeModel } from '../../src/sparkplug/model.js';
import { clusterState } from '../helpers/sparkplug.js';

const STATE = clusterState({ name: 'a' });

function model(): NodeModel {
  return new NodeModel({
    instanceUuid: 'i',
    serviceUuid: 's',
    deviceInfo: { manufacturer: 'm', model: 'n', serial: 'x' },
  });
}

describe('Sparkplug node bdSeq store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bdseq-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts at 0, persists every value before it is used, and continues after a restart', async () => {
    const file = join(dir, 'sub', 'bdseq');
    const a = new BdSeqStore(file, silentLogger);
    expect(a.current).to.equal(undefined);
    expect(await a.next()).to.equal(0);
    expect(readFileSync(file, 'utf8')).to.equal('0\n');
    expect(await a.next()).to.equal(1);
    expect(a.current).to.equal(1);
    const b = new BdSeqStore(file, silentLogger);
    expect(await b.next()).to.equal(2);
    expect(readdirSync(join(dir, 'sub'))).to.deep.equal(['bdseq']);
  });

  it('wraps 255 -> 0 and treats an invalid file as never connected', async () => {
    const file = join(dir, 'bdseq');
    writeFileSync(file, '255');
    expect(await new BdSeqStore(file, silentLogger).next()).to.equal(0);
    writeFileSync(file, 'garbage');
    expect(await new BdSeqStore(file, silentLogger).next()).to.equal(0);
    writeFileSync(file, '300');
    expect(await new BdSeqStore(file, silentLogger).next()).to.equal(0);
  });
});

describe('Sparkplug node model', () => {
  it('gives every node and device metric a unique alias, never reused after removal', () => {
    const m = model();
    m.setDevice('a', STATE);
    m.setDevice('b', STATE);
    m.removeDevice('a');
    m.setDevice('a', STATE);
    const aliases = [m.node, ...[...m.devices.values()].map((d) => d.metrics)].flatMap((s) =>
      s.birth(0).map((x) => x.alias),
    );
    expect(new Set(aliases.map(String)).size).to.equal(aliases.length);
    // 15 node metrics, then 16 per device: the re-added 'a' gets 48..63, not its old 16..31.
    expect(
      m.devices
        .get('a')!
        .metrics.birth(0)
        .map((x) => x.alias),
    ).to.deep.equal(Array.from({ length: 16 }, (_, i) => BigInt(48 + i)));
  });

  it('reports changes only for differing values, and DATA metrics by alias only', () => {
    const m = model();
    expect(m.setDevice('a', STATE)).to.equal(true);
    const entry = m.devices.get('a')!;
    const published = entry.metrics.snapshot();
    expect(m.setDevice('a', { ...STATE, conditions: [] })).to.equal(false);
    expect(m.setDevice('a', { ...STATE, bootstrapFetches: 1, repoHead: 'h' })).to.equal(true);
    const changes = entry.metrics.changes(published, 5);
    expect(changes.map((c) => [c.name, c.type, c.value])).to.deep.equal([
      [undefined, 'String', 'h'],
      [undefined, 'UInt64', 1n],
    ]);
    expect(m.setNodeMetrics({ clusters: { total: 0 }, lastError: '' })).to.equal(false);
    expect(m.setNodeMetrics({ clusters: { failed: 2 } })).to.equal(true);
  });

  it('rejects invalid values without changing anything', () => {
    const m = model();
    expect(() => m.setNodeMetrics({ clusters: { total: 1, ready: 1.5 } })).to.throw(TypeError);
    expect(m.setNodeMetrics({ clusters: { total: 0 } })).to.equal(false);
    expect(() => m.setNodeMetrics({ clusters: { bogus: 1 } as never })).to.throw(/Unknown cluster count/);
    expect(() => m.setDevice('a', { ...STATE, ready: 'yes' } as never)).to.throw(TypeError);
    expect(() => m.setDevice('a', { ...STATE, sealedSecrets: -1 })).to.throw(TypeError);
    expect(() => m.setDevice('a', { ...STATE, repoHead: 5 } as never)).to.throw(TypeError);
    expect(() => m.setDevice('a', { ...STATE, edgeReported: 1 } as never)).to.throw(TypeError);
    expect(() => m.setDevice('a', { ...STATE, edgeReadyHosts: 0.5 })).to.throw(TypeError);
    expect(() => m.setDevice('a', { ...STATE, edgeKubernetesVersions: [1] } as never)).to.throw(TypeError);
    expect(m.devices.size).to.equal(0);
  });
});
