import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('configuration', () => {
  it('loads the seed profile by default', () => {
    const c = loadConfig({ env: {} });
    expect(c.profile).to.equal('seed');
    expect(c.uuids.app.setupStatus).to.equal('747a62c9-1b66-4a2e-8dd9-0b70a91b6b75');
    expect(c.uuids.app.edgeStatus).to.equal('f6c67e6f-e48e-4f69-b4bb-bfbddcc2a517');
  });

  it('swaps the two status apps in the acs profile', () => {
    const c = loadConfig({ env: { UUID_PROFILE: 'acs' } });
    expect(c.profile).to.equal('acs');
    expect(c.uuids.app.setupStatus).to.equal('f6c67e6f-e48e-4f69-b4bb-bfbddcc2a517');
    expect(c.uuids.app.edgeStatus).to.equal('747a62c9-1b66-4a2e-8dd9-0b70a91b6b75');
  });

  it('takes the profile from a CONFIG_FILE, whose own UUIDs still win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'cm.json');
    writeFileSync(
      file,
      JSON.stringify({ profile: 'acs', uuids: { app: { bootstrapTemplate: '00000000-0000-4000-8000-000000000001' } } }),
    );
    const c = loadConfig({ env: { CONFIG_FILE: file } });
    expect(c.profile).to.equal('acs');
    expect(c.uuids.app.setupStatus).to.equal('f6c67e6f-e48e-4f69-b4bb-bfbddcc2a517');
    expect(c.uuids.app.bootstrapTemplate).to.equal('00000000-0000-4000-8000-000000000001');
  });

  it('takes environment overrides, including the original variable names', () => {
    const c = loadConfig({
      env: { PORT: '9000', DATA_DIR: '/tmp/x', ORGANISATION_PREFIX: 'ACME', DIRECTORY_URL: 'http://directory.example' },
    });
    expect(c.http.port).to.equal(9000);
    expect(c.dataDir).to.equal('/tmp/x');
    expect(c.factoryplus.organisation).to.equal('ACME');
    expect(c.factoryplus.directoryUrl).to.equal('http://directory.example');
  });

  it('names every bad value with its source', () => {
    try {
      loadConfig({
        env: {
          PORT: 'eighty',
          UUID_PROFILE: 'other',
          LOG_LEVEL: 'loud',
          SPARKPLUG_ADDRESS: 'no-slash',
          DIRECTORY_URL: 'not a url',
        },
      });
      expect.fail('expected a ConfigError');
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      const msg = (e as ConfigError).message;
      expect(msg).to.match(/PORT="eighty": must be a whole number/);
      expect(msg).to.match(/UUID_PROFILE="other"/);
      expect(msg).to.match(/log\.level: .*LOG_LEVEL/);
      expect(msg).to.match(/sparkplug\.address: .*SPARKPLUG_ADDRESS/);
      expect(msg).to.match(/factoryplus\.directoryUrl: .*DIRECTORY_URL/);
    }
  });

  it('takes MAX_EVENT_STREAMS_PER_CALLER (default 8) and names it when its value is bad', () => {
    expect(loadConfig({ env: {} }).http.maxEventStreamsPerCaller).to.equal(8);
    expect(loadConfig({ env: { MAX_EVENT_STREAMS_PER_CALLER: '2' } }).http.maxEventStreamsPerCaller).to.equal(2);
    expect(() => loadConfig({ env: { MAX_EVENT_STREAMS_PER_CALLER: 'some' } })).to.throw(
      ConfigError,
      /MAX_EVENT_STREAMS_PER_CALLER="some": must be a whole number \(sets http\.maxEventStreamsPerCaller\)/,
    );
    // Every caller needs one stream at least; 0 would turn the stream off, which MAX_EVENT_STREAMS=0 does.
    expect(() => loadConfig({ env: { MAX_EVENT_STREAMS_PER_CALLER: '0' } })).to.throw(
      ConfigError,
      /http\.maxEventStreamsPerCaller: must be >= 1 \(environment: MAX_EVENT_STREAMS_PER_CALLER\)/,
    );
  });

  it('rejects unknown keys and malformed UUIDs in overrides', () => {
    expect(() => loadConfig({ env: {}, overrides: { bogus: 1 } })).to.throw(ConfigError, /bogus/);
    expect(() => loadConfig({ env: {}, overrides: { uuids: { app: { info: 'nope' } } } })).to.throw(
      ConfigError,
      /uuids\.app\.info/,
    );
  });
});
