import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { fluxSystemYaml, readFluxSystemYaml } from '../fixtures/flux-system.js';

describe('test fixtures', () => {
  it('flux-system.yaml is the output of its generator, a Flux installation of realistic size and shape', () => {
    const text = readFluxSystemYaml();
    expect(text === fluxSystemYaml(), 'regenerate with: npx tsx test/fixtures/flux-system.ts').to.equal(true);
    expect(text.length).to.be.within(400_000, 600_000);
    const docs = parseAllDocuments(text) as unknown as Array<{ errors: unknown[]; toJS(): unknown }>;
    for (const d of docs) expect(d.errors).to.deep.equal([]);
    const kinds = docs.map((d) => (d.toJS() as { kind: string }).kind);
    expect(kinds[0]).to.equal('Namespace');
    expect(kinds.filter((k) => k === 'CustomResourceDefinition')).to.have.length(11);
    expect(kinds.filter((k) => k === 'Deployment')).to.have.length(4);
    // What a bootstrap script has to carry unchanged.
    expect(text)
      .to.include('$(RUNTIME_NAMESPACE)')
      .and.include('C:\\flux\\data')
      .and.include('"*"')
      .and.include("'latest'");
  });
});
