import type { RepoPool } from '../repo/pool.js';

export const FLUX_SYSTEM_PATH = 'flux-system/flux-system.yaml';

/**
 * `flux-system.yaml` from the shared Helm repo, read at most once per
 * `ttlMs`: the file is half a megabyte and changes with a Flux upgrade, not
 * with every bootstrap, and reading it means a fetch from the Git server.
 */
export class FluxSystemFile {
  private cached: { repo: string; text: string | undefined; until: number } | undefined;
  private reading: Promise<string | undefined> | undefined;

  constructor(
    private readonly repos: RepoPool,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  async read(helmRepo: string): Promise<string | undefined> {
    const c = this.cached;
    if (c && c.repo === helmRepo && c.until > this.now()) return c.text;
    this.reading ??= (async () => {
      try {
        const text = await this.repos.readFile(helmRepo, FLUX_SYSTEM_PATH);
        this.cached = { repo: helmRepo, text, until: this.now() + this.ttlMs };
        return text;
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
