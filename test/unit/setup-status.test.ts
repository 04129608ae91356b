import { expect } from 'chai';
import { applyMergePatch, type Json } from '../../src/lib/merge-patch.js';
import {
  HISTORY_LIMIT,
  HISTORY_MESSAGE_MAX,
  readStatus,
  setCondition,
  clearConditions,
  transitions,
  withHistory,
  type Condition,
  type ConditionInput,
} from '../../src/reconcile/setup-status.js';

/*
 * The condition history's rules: a transition is a condition that appears,
 * changes status or reason, or is cleared; a retry counting another attempt
 * is none; entries are oldest first, at most HISTORY_LIMIT, messages cut.
 */

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);

const gitDown = (attempts: number): ConditionInput => ({
  type: 'Ready',
  status: 'False',
  reason: 'GitUnavailable',
  message: `connect ECONNREFUSED 127.0.0.1:9 (attempt ${attempts})`,
  attempts,
  lastAttempt: at(attempts).toISOString(),
  nextAttempt: at(attempts + 1).toISOString(),
});
const commissioned: ConditionInput = { type: 'Ready', status: 'True', reason: 'Commissioned', message: 'repo at 0123' };

/** A status entry after a write of `conditions`, with the history withHistory gives it, as the store applies it. */
function write(entry: Json | undefined, conditions: Condition[], now: Date): Json {
  const after = applyMergePatch(entry ?? {}, { conditions: conditions as unknown as Json });
  const history = withHistory(entry, after, now);
  return history ? applyMergePatch(after, { history: history as unknown as Json }) : after;
}

const historyOf = (entry: Json) => readStatus(entry)!.history!;

describe('setup status: condition history', () => {
  it('records a condition that appears, changes status or reason, or is cleared, and nothing else', () => {
    const before = setCondition([], gitDown(1), at(1));
    // Another attempt failing the same way: message, attempts and times change, the reason does not.
    expect(transitions(before, setCondition(before, gitDown(2), at(2)), at(2))).to.deep.equal([]);
    // A message alone is no transition either.
    expect(
      transitions(before, setCondition(before, { ...gitDown(1), message: 'other words' }, at(2)), at(2)),
    ).to.deep.equal([]);
    // Same status, another reason.
    const unauthorised = setCondition(before, { ...gitDown(3), reason: 'GitUnauthorized', message: '401' }, at(3));
    expect(transitions(before, unauthorised, at(3))).to.deep.equal([
      { type: 'Ready', status: 'False', reason: 'GitUnauthorized', message: '401', at: at(3).toISOString() },
    ]);
    // Another status; a new condition beside it; one cleared, listed after those set.
    const after = setCondition(
      setCondition(
        clearConditions(unauthorised, 'Ready'),
        { type: 'EdgeReporting', status: 'False', reason: 'NotBootstrapped', message: 'm' },
        at(4),
      ),
      commissioned,
      at(4),
    );
    const withRepo = setCondition(
      unauthorised,
      { type: 'Repo', status: 'False', reason: 'GitUnauthorized', message: '401' },
      at(3),
    );
    expect(transitions(withRepo, after, at(4)).map((h) => [h.type, h.status, h.reason])).to.deep.equal([
      ['EdgeReporting', 'False', 'NotBootstrapped'],
      ['Ready', 'True', 'Commissioned'],
      ['Repo', 'Cleared', ''],
    ]);
  });

  it('keeps entries oldest first through a failure, retries and recovery', () => {
    let entry: Json | undefined;
    let conditions: Condition[] = [];
    for (let i = 1; i <= 5; i++) {
      conditions = setCondition(conditions, gitDown(i), at(i));
      entry = write(entry, conditions, at(i));
    }
    conditions = setCondition(conditions, commissioned, at(9));
    entry = write(entry, conditions, at(9));
    expect(historyOf(entry)).to.deep.equal([
      {
        type: 'Ready',
        status: 'False',
        reason: 'GitUnavailable',
        message: 'connect ECONNREFUSED 127.0.0.1:9 (attempt 1)',
        at: at(1).toISOString(),
      },
      { type: 'Ready', status: 'True', reason: 'Commissioned', message: 'repo at 0123', at: at(9).toISOString() },
    ]);
    // A write that makes no transition leaves the history as it is: there is nothing to carry.
    const again = setCondition(conditions, { ...commissioned, message: 'repo at 4567' }, at(10));
    expect(withHistory(entry, applyMergePatch(entry, { conditions: again as unknown as Json }), at(10))).to.equal(
      undefined,
    );
  });

  it(`keeps at most ${HISTORY_LIMIT} entries, dropping the oldest`, () => {
    let entry: Json | undefined;
    let conditions: Condition[] = [];
    const total = HISTORY_LIMIT + 7;
    for (let i = 0; i < total; i++) {
      conditions = setCondition(conditions, { ...gitDown(i), reason: `Reason${i}` }, at(i));
      entry = write(entry, conditions, at(i));
    }
    const h = historyOf(entry!);
    expect(h).to.have.length(HISTORY_LIMIT);
    expect(h[0].reason).to.equal(`Reason${total - HISTORY_LIMIT}`);
    expect(h.at(-1)!.reason).to.equal(`Reason${total - 1}`);
    expect(h.map((x) => Date.parse(x.at))).to.deep.equal([...h.map((x) => Date.parse(x.at))].sort((a, b) => a - b));
  });

  it(`cuts messages to ${HISTORY_MESSAGE_MAX} characters, never inside a character`, () => {
    const long = `${'x'.repeat(HISTORY_MESSAGE_MAX - 2)}😀😀😀 and the rest`;
    const [h] = transitions([], setCondition([], { ...gitDown(1), message: long }, at(1)), at(1));
    expect(Array.from(h.message)).to.have.length(HISTORY_MESSAGE_MAX);
    expect(h.message).to.equal(`${'x'.repeat(HISTORY_MESSAGE_MAX - 2)}😀…`);
    expect(h.message, 'no lone surrogate').to.not.match(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    const short = transitions([], setCondition([], { ...gitDown(1), message: 'short' }, at(1)), at(1));
    expect(short[0].message).to.equal('short');
  });

  it('reads a status written before the history was kept as having none, and the first transition starts it', () => {
    // As the original Cluster Manager wrote it: no phase, no conditions, no history.
    const old: Json = { spec: { name: 'Line_1', namespace: 'fplus-edge' }, ready: true, flux: 'f1', krbkeys: 'k1' };
    expect(readStatus(old)!.history).to.deep.equal([]);
    // And one of this service from before the history: conditions only.
    const ours = { ready: true, phase: 'ready', conditions: setCondition([], commissioned, at(0)) } as unknown as Json;
    expect(readStatus(ours)!.history).to.deep.equal([]);
    const failed = write(ours, setCondition([], gitDown(1), at(5)), at(5));
    expect(historyOf(failed).map((h) => [h.status, h.reason])).to.deep.equal([['False', 'GitUnavailable']]);
  });

  it('drops malformed entries when reading, and keeps well-formed ones as they are', () => {
    const good = { type: 'Ready', status: 'True', reason: 'Commissioned', message: 'm', at: at(0).toISOString() };
    const entry = {
      history: [
        good,
        { type: 'Ready', status: 'Maybe', reason: 'X', message: '', at: at(1).toISOString() },
        { status: 'True', at: at(1).toISOString() },
        { type: 'Repo', status: 'Cleared', at: at(2).toISOString() },
        'not an entry',
      ],
    } as unknown as Json;
    const h = historyOf(entry);
    expect(h).to.deep.equal([
      good,
      { type: 'Repo', status: 'Cleared', reason: '', message: '', at: at(2).toISOString() },
    ]);
    expect(h[0]).to.equal(good);
    expect(readStatus({ history: 'nonsense' })!.history).to.deep.equal([]);
  });
});
