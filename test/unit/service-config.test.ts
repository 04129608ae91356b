import { expect } from 'chai';
import { validateServiceConfig } from '../../src/reconcile/service-config.js';
import { entryKind, profileEvidence } from '../../src/check/profile.js';

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const GOOD = {
  group: { cluster: { path: 'edge-clusters', uuid: U(1) }, flux: { uuid: U(2) }, krbkeys: { uuid: U(3) } },
  helm: { cluster: U(4) },
  repo: { helm: { uuid: U(5) } },
  extra: 'kept',
};

describe('validateServiceConfig', () => {
  it('accepts an entry with every field, and fields it does not read', () => {
    const r = validateServiceConfig(GOOD);
    expect(r).to.deep.equal({ ok: true, value: GOOD, errors: [] });
  });

  it('names every bad field with what it must be, in a fixed order', () => {
    const bad: { group: { cluster: { path: string }; krbkeys?: unknown }; helm: { cluster: string } } =
      structuredClone(GOOD);
    bad.group.cluster.path = '';
    delete bad.group.krbkeys;
    bad.helm.cluster = 'not-a-uuid';
    expect(validateServiceConfig(bad as never)).to.deep.equal({
      ok: false,
      errors: ['group.cluster.path (a non-empty string)', 'group.krbkeys.uuid (a UUID)', 'helm.cluster (a UUID)'],
    });
  });

  it('refuses what is not an object', () => {
    for (const v of [null, [], 'x', 3, undefined]) {
      expect(validateServiceConfig(v as never).ok, JSON.stringify(v)).to.equal(false);
    }
  });
});

describe('UUID profile evidence', () => {
  it('tells setup status entries from Edge cluster status entries by their fields', () => {
    expect(entryKind({ spec: {}, ready: true })).to.equal('setup');
    expect(entryKind({ phase: 'repo', specHash: 'ab' })).to.equal('setup');
    expect(entryKind({ hosts: [], kubeseal_cert: 'x' })).to.equal('edge');
    // Both kinds of field, none, or no object: no evidence either way.
    expect(entryKind({ ready: true, hosts: [] })).to.equal('unknown');
    expect(entryKind({})).to.equal('unknown');
    expect(entryKind([])).to.equal('unknown');
  });

  it('counts entries of each kind under each app', () => {
    const e = profileEvidence(
      [{ ready: true }, { hosts: [] }, {}],
      [{ phase: 'ready' }, { kubeseal_cert: 'x' }, { kubeseal_cert: 'y' }],
    );
    expect(e).to.deep.equal({ setupInSetupApp: 1, edgeInEdgeApp: 2, setupUnderEdgeApp: 1, edgeUnderSetupApp: 1 });
  });
});
