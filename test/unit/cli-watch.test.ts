import { expect } from 'chai';
import type { ClusterDetail } from '../../src/cli/client.js';
import { changeLines, failedReason } from '../../src/cli/watch.js';
import type { Condition } from '../../src/reconcile/setup-status.js';

const now = Date.parse('2026-01-01T12:00:00Z');
const plain = (_s: string, t: string) => t;
const clock = new Date(now).toTimeString().slice(0, 8);

const detail = (phase: string, conditions: Condition[]): ClusterDetail => ({
  uuid: '181b3019-8f3f-4474-812a-5598feac29c2',
  name: 'Demo_1',
  phase,
  ready: phase === 'ready',
  reason: null,
  message: null,
  edge: null,
  conditions,
  repo: { head: null },
  secrets: { count: 0 },
  bootstrap: { fetches: 0, lastFetch: null },
});

const repoDown = (attempts: number): Condition => ({
  type: 'Repo',
  status: 'False',
  reason: 'GitUnavailable',
  message: 'no answer',
  lastTransitionTime: '2026-01-01T11:58:00Z',
  attempts,
  nextAttempt: '2026-01-01T12:00:08Z',
});
const ready: Condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Commissioned',
  message: 'repo at 76433dd29750',
  lastTransitionTime: '2026-01-01T12:00:00Z',
};

describe('cluster-manager status --watch: change lines', () => {
  it('says a new attempt of a failing step, with when the next is due', () => {
    expect(changeLines(detail('repo', [repoDown(2)]), detail('repo', [repoDown(3)]), now, plain)).to.deep.equal([
      `${clock}  Repo False GitUnavailable (attempt 3, next in 8s): no answer`,
    ]);
  });

  it('says nothing of what did not change, and the phase, a new condition and a cleared one when they do', () => {
    const failing = detail('repo', [repoDown(3), { ...repoDown(3), type: 'Ready' }]);
    expect(changeLines(failing, failing, now, plain)).to.deep.equal([]);
    expect(changeLines(failing, detail('ready', [ready]), now, plain)).to.deep.equal([
      `${clock}  phase repo -> ready`,
      `${clock}  Ready True Commissioned: repo at 76433dd29750`,
      `${clock}  Repo cleared`,
    ]);
  });

  it('colours the condition status as the status view does', () => {
    const paint = (s: string, t: string) => `<${s}>${t}`;
    const [line] = changeLines(detail('repo', []), detail('ready', [ready]), now, paint).slice(1);
    expect(line).to.include('<green>True');
  });

  it("names a failed cluster's reason and message from its Ready condition", () => {
    const failed = detail('failed', [
      { ...ready, status: 'False', reason: 'InvalidSpec', message: 'namespace is not a DNS label' },
    ]);
    expect(failedReason(failed)).to.equal('InvalidSpec: namespace is not a DNS label');
    expect(failedReason(detail('failed', []))).to.equal('no reason given');
  });
});
