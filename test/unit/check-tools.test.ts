import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, missingMessage, missingTools, TOOLS } from '../../scripts/check-tools.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('pretest: system tools check (scripts/check-tools.ts)', () => {
  let empty: string;
  beforeEach(() => {
    empty = mkdtempSync(join(tmpdir(), 'no-tools-'));
  });
  afterEach(() => rmSync(empty, { recursive: true, force: true }));

  it('finds an executable on PATH or in the extra directories, and nothing else', () => {
    expect(findTool('git')).to.be.a('string');
    expect(findTool('git', [], empty)).to.equal(undefined);
    writeFileSync(join(empty, 'tool'), '#!/bin/sh\n');
    expect(findTool('tool', [], empty), 'not executable').to.equal(undefined);
    chmodSync(join(empty, 'tool'), 0o755);
    expect(findTool('tool', [], '')).to.equal(undefined);
    expect(findTool('tool', [empty], '')).to.equal(join(empty, 'tool'));
  });

  it('names every missing tool with its Debian package in one line', () => {
    const missing = missingTools(empty).map((t) => t.command);
    for (const t of TOOLS.filter((x) => !x.also)) expect(missing).to.include(t.command);
    const line = missingMessage(TOOLS.filter((t) => ['kubectl', 'shellcheck'].includes(t.command)));
    expect(line).to.not.include('\n');
    expect(line).to.match(
      /^missing system tools for the tests: shellcheck \(.+\), kubectl \(.+\); install them with: sudo apt-get install -y shellcheck kubernetes-client /,
    );
  });

  it('stops with that line, installing nothing, where apt-get cannot be run', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-tools.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: empty, HOME: empty },
    });
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(
      /^missing system tools for the tests: git .*install them with: sudo apt-get install -y git openssl shellcheck dash kubernetes-client/,
    );
  });

  it('passes quietly when everything is there', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-tools.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stderr).to.equal('');
    expect(r.status).to.equal(0);
  });
});
