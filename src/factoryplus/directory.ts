import { ServiceError, type FplusHttp } from './http.js';

export interface SparkplugAddress {
  group_id: string;
  node_id?: string;
  device_id?: string;
}

/** Service discovery through the Factory+ Directory. */
export class DirectoryClient {
  private readonly urls = new Map<string, string>();

  /** `overrides`: service UUID -> URL used instead of asking the Directory (the service client's CONFIGDB_URL etc.). */
  constructor(
    private readonly http: FplusHttp,
    readonly baseUrl: string,
    overrides: Record<string, string | null> = {},
  ) {
    for (const [service, url] of Object.entries(overrides))
      if (url) this.urls.set(service, url.endsWith('/') ? url : `${url}/`);
  }

  /** Base URL of a service; cached, since service URLs change only with a redeployment. */
  async serviceUrl(service: string): Promise<string> {
    const cached = this.urls.get(service);
    if (cached) return cached;
    const { provider } = await this.provider(service);
    if (!provider.url) throw new ServiceError(this.baseUrl, 404, `the Directory has no URL for service ${service}`);
    const url = provider.url.endsWith('/') ? provider.url : `${provider.url}/`;
    this.urls.set(service, url);
    return url;
  }

  /** The URL of a service if it is already known, without asking. */
  knownUrl(service: string): string | undefined {
    return this.urls.get(service);
  }

  async provider(service: string): Promise<{ provider: { device: string | null; url: string | null } }> {
    const res = await this.http.request<Array<{ device: string | null; url: string | null }>>(
      this.baseUrl,
      'GET',
      `v1/service/${service}`,
      { label: 'Directory' },
    );
    const list = Array.isArray(res.body) ? res.body : [];
    if (list.length === 0)
      throw new ServiceError(this.baseUrl, 404, `the Directory knows no provider of service ${service}`);
    return { provider: list[0] };
  }

  async device(uuid: string): Promise<SparkplugAddress & { uuid: string }> {
    return (
      await this.http.request<SparkplugAddress & { uuid: string }>(this.baseUrl, 'GET', `v1/device/${uuid}`, {
        label: 'Directory',
      })
    ).body;
  }
}
