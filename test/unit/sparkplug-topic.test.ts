import { expect } from 'chai';
import { parseTopic, topic } from '../../src/lib/sparkplug/index.js';

describe('Sparkplug topics', () => {
  it('parses node topics', () => {
    expect(parseTopic('spBv1.0/AMRC-Service-Core/NBIRTH/Config_DB')).to.deep.equal({
      group: 'AMRC-Service-Core',
      type: 'NBIRTH',
      node: 'Config_DB',
    });
    expect(parseTopic('spBv1.0/G/NCMD/N')).to.deep.equal({ group: 'G', type: 'NCMD', node: 'N' });
  });

  it('parses device topics', () => {
    expect(parseTopic('spBv1.0/G/DDATA/N/Dev 1')).to.deep.equal({
      group: 'G',
      type: 'DDATA',
      node: 'N',
      device: 'Dev 1',
    });
  });

  it('returns undefined for anything that is not a node or device topic', () => {
    for (const t of [
      'spBv1.0/STATE/host',
      'spBv1.0/G/NBIRTH',
      'spBv1.0/G/NBIRTH/N/D',
      'spBv1.0/G/DBIRTH/N',
      'spBv1.0/G/NBOGUS/N',
      'spBv1.0//NDATA/N',
      'spBv1.0/G/NDATA/',
      'spAv1.0/G/NDATA/N',
      'spBv1.0/G/DDATA/N/D/extra',
      'spBv1.0/+/NDATA/N',
      '',
    ]) {
      expect(parseTopic(t), t).to.equal(undefined);
    }
  });

  it('builds topics that parse back', () => {
    expect(topic('G', 'NDEATH', 'N')).to.equal('spBv1.0/G/NDEATH/N');
    expect(topic('G', 'DCMD', 'N', 'D')).to.equal('spBv1.0/G/DCMD/N/D');
    expect(parseTopic(topic('Grp', 'DBIRTH', 'Node', 'Dev'))).to.deep.equal({
      group: 'Grp',
      type: 'DBIRTH',
      node: 'Node',
      device: 'Dev',
    });
  });

  it('refuses to build invalid topics', () => {
    expect(() => topic('G', 'NDATA', 'N', 'D')).to.throw(/no device/);
    expect(() => topic('G', 'DDATA', 'N')).to.throw(/device id/);
    expect(() => topic('', 'NDATA', 'N')).to.throw(/group/);
    expect(() => topic('G', 'NDATA', 'a/b')).to.throw(/node/);
    expect(() => topic('G#', 'NDATA', 'N')).to.throw(/group/);
    expect(() => topic('G', 'XDATA' as 'NDATA', 'N')).to.throw(/message type/);
  });
});
