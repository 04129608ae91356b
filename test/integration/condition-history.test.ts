/**
 * A cluster's conditions history, as an operator asks for it after the fact:
 * a bad entry, then Git out of reach, then recovery, all served by
 * `GET /v1/cluster/{uuid}` from the setup status, the same in the Config
 * Store entry, and the same after the manager restarts. Against the
 * embedded core; the manager reaches Git through a relay that can refuse.
 */
import { expect } from 'chai';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import type { ClusterRecord } from '../../src/http/cluster-summary.js';
import { getCondition, readStatus, type HistoryEntry } from '../../src/reconcile/setup-status.js';
import { FAST_RETRIES, startApiStackWithGitRelay, type ApiStack } from '../helpers/api.js';
import { waitFor } from '../helpers/processes.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

describe('conditions history', function () {
  this.timeout(120_000);
  let s: ApiStack;
  let git: TcpProxy;

  const u = () => s.config.uuids;
  const putConfig = (uuid: string, spec: Record<string, unknown>) =>
    fetch(`${s.t.core.endpoints.configdb}/v2/app/${u().app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify(spec),
    });
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${s.url}${path}`, { headers: { Authorization: s.admin } });
    expect(res.status, `GET ${path}`).to.equal(200);
    return (await res.json()) as T;
  };
  const status = (c: string) => readStatus(s.m.status.get(c));
  const brief = (h: HistoryEntry[]) => h.map((x) => `${x.type} ${x.status} ${x.reason}`.trim());

  before(async () => {
    ({ s, git } = await startApiStackWithGitRelay({ config: FAST_RETRIES }));
  });
  after(async () => {
    await s?.stop();
    await git?.close();
  });

  it('shows a failure, its retries as one transition, and the recovery, in GET /v1/cluster/{uuid} and the Config Store, also after a restart', async () => {
    const c = s.t.core.objects.create({ class: u().class.edgeCluster, owner: Local.account.admin }).registration.uuid;

    // A bad entry: refused before anything is made.
    expect((await putConfig(c, { name: 'History_1', namespace: 'Not_A_Namespace' })).status).to.equal(201);
    await waitFor(() => status(c)?.phase === 'failed', 20_000, undefined, 'the bad entry failed');

    // Fixed, while Git is out of reach: the repo step fails again and again.
    git.set('refuse');
    expect((await putConfig(c, { name: 'History_1', namespace: 'fplus-edge' })).status).to.equal(204);
    await waitFor(
      () => (getCondition(status(c), 'Repo')?.attempts ?? 0) >= 3,
      20_000,
      undefined,
      'three failed attempts',
    );
    git.set('pass');
    await waitFor(() => status(c)?.ready, 20_000, undefined, 'ready once Git is back');
    await s.m.status.flush();

    const record = await get<ClusterRecord>(`/v1/cluster/${c}`);
    expect(record).to.include({ uuid: c, name: 'History_1', phase: 'ready', ready: true });
    const h = record.history;
    const steps = brief(h).filter((x) => !x.startsWith('EdgeReporting'));
    expect(steps, brief(h).join('\n')).to.deep.equal([
      'Ready False InvalidNamespace',
      // Commissioning of the fixed entry starts: Ready is Unknown while it runs.
      'Ready Unknown Progressing',
      // Three attempts or more, one transition each for the step and for Ready.
      // (Ready, already in the list, is listed first; both in one write.)
      'Ready False GitUnavailable',
      'Repo False GitUnavailable',
      'Repo Cleared',
      'Ready True Commissioned',
    ]);
    expect(h[0].message).to.match(/Not_A_Namespace.* is not a valid Kubernetes namespace/);
    expect(h.find((x) => x.type === 'Repo')!.message)
      .to.be.a('string')
      .and.not.equal('');
    const times = h.map((x) => Date.parse(x.at));
    expect(
      times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1])),
      'oldest first',
    ).to.equal(true);
    expect(Date.now() - times[0]).to.be.within(0, 60_000);

    // Kept out of the list, which stays one small entry per cluster.
    const list = await get<Array<Record<string, unknown>>>('/v1/cluster');
    expect(list.find((x) => x.uuid === c)).to.not.have.property('history');

    // Any reader of the Config Store sees it in the setup status entry.
    const entry = (await (
      await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u().app.setupStatus}/object/${c}`, {
        headers: { Authorization: s.admin },
      })
    ).json()) as { history: HistoryEntry[] };
    expect(entry.history).to.deep.equal(h);

    await s.restartManager();
    const again = await get<ClusterRecord>(`/v1/cluster/${c}`);
    expect(again.history).to.deep.equal(h);
    expect(again.ready).to.equal(true);
  });
});
