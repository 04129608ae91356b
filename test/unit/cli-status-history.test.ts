import { expect } from 'chai';
import { RECENT_TRANSITIONS, statusText } from '../../src/cli/format.js';
import type { HistoryEntry } from '../../src/reconcile/setup-status.js';

/* `cluster-manager status NAME`: the stored condition transitions, newest first, with how long ago. */
describe('cli: status shows the recent transitions', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const plain = (_s: string, t: string) => t;
  const entry = (at: string, status: HistoryEntry['status'], reason: string, message = ''): HistoryEntry => ({
    type: 'Ready',
    status,
    reason,
    message,
    at,
  });
  const base = { phase: 'ready' as const, ready: true, conditions: [] };

  it('lists them newest first, each with how long ago', () => {
    const text = statusText(
      'Demo_1',
      'u',
      {
        ...base,
        history: [
          entry('2026-01-01T11:00:00Z', 'False', 'InvalidName', 'name must be ...'),
          entry('2026-01-01T11:58:00Z', 'Cleared', ''),
          entry('2026-01-01T11:59:30Z', 'True', 'Commissioned', 'repo at 0123'),
        ],
      },
      now,
      plain,
    );
    const lines = text.split('\n');
    const at = lines.indexOf('Recent transitions:');
    expect(at, text).to.be.greaterThan(0);
    expect(lines[at + 1]).to.match(/^\s+WHEN\s+TYPE\s+STATUS\s+REASON\s+MESSAGE$/);
    expect(lines[at + 2]).to.match(/^\s+30s ago\s+Ready\s+True\s+Commissioned\s+repo at 0123$/);
    expect(lines[at + 3]).to.match(/^\s+2m ago\s+Ready\s+Cleared\s+-\s*$/);
    expect(lines[at + 4]).to.match(/^\s+60m ago\s+Ready\s+False\s+InvalidName\s+name must be \.\.\.$/);
    expect(lines).to.have.length(at + 5);
  });

  it(`shows the ${RECENT_TRANSITIONS} most recent and says how many more --json has`, () => {
    const history = Array.from({ length: RECENT_TRANSITIONS + 4 }, (_, i) =>
      entry(new Date(now - (100 - i) * 1000).toISOString(), 'False', `Reason${i}`),
    );
    const text = statusText('Demo_1', 'u', { ...base, history }, now, plain);
    expect(text).to.include(`Reason${RECENT_TRANSITIONS + 3}`);
    expect(text).to.include('Reason4');
    expect(text).to.not.match(/Reason3\b/);
    expect(text).to.include('(4 earlier; --json shows them)');
  });

  it('says nothing of transitions for a status without any (one written before they were kept)', () => {
    expect(statusText('Demo_1', 'u', base, now, plain)).to.not.include('Recent transitions');
  });
});
