import { expect } from 'chai';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pickCluster, type ClusterSummary } from '../../src/cli/client.js';
import { readToken, resolveConnection, tokenFilePath, writeToken } from '../../src/cli/connection.js';
import { CliError, EXIT } from '../../src/cli/exit.js';
import { painter, relative, statusText, table } from '../../src/cli/format.js';
import { tempDir } from '../helpers/core.js';

const cluster = (uuid: string, name: string | null, phase = 'ready'): ClusterSummary => ({
  uuid,
  name,
  phase,
  ready: phase === 'ready',
  reason: null,
  message: null,
  edge: null,
});

const codeOf = (fn: () => unknown): number => {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e.code;
    throw e;
  }
  return EXIT.done;
};

describe('cluster-manager command line: names, connection, output', () => {
  describe('pickCluster', () => {
    const list = [
      cluster('00000000-0000-4000-8000-000000000001', 'Line_7'),
      cluster('00000000-0000-4000-8000-000000000002', 'line-7', 'failed'),
      cluster('00000000-0000-4000-8000-000000000003', 'Demo_1'),
      cluster('00000000-0000-4000-8000-000000000004', null, 'pending'),
    ];

    it('an exact name means its cluster, even when another folds to the same', () => {
      expect(pickCluster(list, 'Line_7').uuid).to.equal('00000000-0000-4000-8000-000000000001');
      expect(pickCluster(list, 'line-7').uuid).to.equal('00000000-0000-4000-8000-000000000002');
    });

    it('a name in another case means the one cluster the service would give it', () => {
      expect(pickCluster(list, 'DEMO_1')).to.deep.equal({
        uuid: '00000000-0000-4000-8000-000000000003',
        name: 'Demo_1',
      });
    });

    it('a name that means two clusters is a usage error naming both', () => {
      let err: CliError | undefined;
      try {
        pickCluster(list, 'LINE_7');
      } catch (e) {
        err = e as CliError;
      }
      expect(err?.code).to.equal(EXIT.usage);
      expect(err?.message).to.include('000000000001').and.include('000000000002');
    });

    it('no such name is not found; a cluster without a name is never matched', () => {
      expect(codeOf(() => pickCluster(list, 'Nope'))).to.equal(EXIT.notFound);
      expect(codeOf(() => pickCluster(list, 'null'))).to.equal(EXIT.notFound);
    });
  });

  describe('resolveConnection', () => {
    const url = 'http://127.0.0.1:7080';

    it('options before environment; a user without a password is a usage error', () => {
      const env = { CLUSTER_MANAGER_URL: url, CLUSTER_MANAGER_USER: 'env', CLUSTER_MANAGER_PASSWORD: 'e' };
      const c = resolveConnection({ user: 'opt', password: 'o' }, env);
      expect(c.credentials).to.deep.equal({ username: 'opt', password: 'o' });
      expect(resolveConnection({}, env).credentialSource).to.equal('environment');
      expect(codeOf(() => resolveConnection({ url, user: 'u' }, {}))).to.equal(EXIT.usage);
    });

    it('a login token is used only for its own URL and only while valid', () => {
      const dir = tempDir('cm-cli-unit-');
      const env = { XDG_CONFIG_HOME: dir, DATA_DIR: dir };
      writeToken(env, { url, token: 'tok', expiry: 2_000 });
      expect(readToken(env)?.token).to.equal('tok');
      expect(statSync(tokenFilePath(env)).mode & 0o777).to.equal(0o600);
      expect(resolveConnection({ url }, env, 1_000).authorization).to.equal('Bearer tok');
      expect(resolveConnection({ url }, env, 3_000).authorization).to.equal(undefined);
      expect(resolveConnection({ url: 'http://elsewhere:1' }, env, 1_000).authorization).to.equal(undefined);
    });

    it("the embedded default's credential goes only to its own Cluster Manager", () => {
      const dir = tempDir('cm-cli-unit-');
      mkdirSync(join(dir, 'data'));
      writeFileSync(
        join(dir, 'data', 'endpoints.json'),
        JSON.stringify({ clusterManager: `${url}/`, directory: 'http://127.0.0.1:7081', username: 'a', password: 'p' }),
      );
      const env = { DATA_DIR: join(dir, 'data'), XDG_CONFIG_HOME: dir };
      const c = resolveConnection({}, env);
      expect(c).to.include({ url, directory: 'http://127.0.0.1:7081', credentialSource: 'endpoints' });
      expect(resolveConnection({ url: 'http://elsewhere:1' }, env).credentialSource).to.equal('none');
    });
  });

  describe('format', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');

    it('colours only a terminal, and not with NO_COLOR', () => {
      expect(painter(true, {})('green', 'ok')).to.equal('\x1b[32mok\x1b[39m');
      expect(painter(true, { NO_COLOR: '1' })('green', 'ok')).to.equal('ok');
      expect(painter(false, {})('green', 'ok')).to.equal('ok');
    });

    it('says times as how long ago or how soon', () => {
      expect(relative('2026-01-01T11:59:48Z', now)).to.equal('12s ago');
      expect(relative('2026-01-01T12:05:00Z', now)).to.equal('in 5m');
      expect(relative('2025-12-30T12:00:00Z', now)).to.equal('2d ago');
      expect(relative(null, now)).to.equal('-');
    });

    it('pads columns by their visible width, colour codes not counted', () => {
      expect(
        table([
          ['\x1b[32mab\x1b[39m', 'x'],
          ['abcd', 'y'],
        ]),
      ).to.equal('\x1b[32mab\x1b[39m    x\nabcd  y');
    });

    it('shows a failing step with its attempts and next attempt', () => {
      const text = statusText(
        'Demo_1',
        'u',
        {
          phase: 'repo',
          ready: false,
          conditions: [
            {
              type: 'Repo',
              status: 'False',
              reason: 'GitUnavailable',
              message: 'no answer',
              lastTransitionTime: '2026-01-01T11:58:00Z',
              attempts: 3,
              lastAttempt: '2026-01-01T11:59:50Z',
              nextAttempt: '2026-01-01T12:00:08Z',
            },
          ],
        },
        now,
        (_s, t) => t,
      );
      expect(text).to.match(/Repo\s+False\s+GitUnavailable\s+2m ago\s+no answer/);
      expect(text).to.include('attempt 3, last 10s ago, next in 8s');
    });
  });
});
