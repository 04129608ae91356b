import type { Json } from '../lib/merge-patch.js';
import type { FplusHttp } from './http.js';

export type BaseUrl = () => Promise<string>;

/**
 * The metric of the Config Store's Sparkplug node whose NDATA names an
 * application (by UUID) whose entries changed ("Last_Changed", notify v0).
 */
export const LAST_CHANGED_APPLICATION = 'Last_Changed/Application';

/** Client of the Config Store's v2 API, as the Factory+ service client uses it. */
export class ConfigDbClient {
  constructor(
    private readonly http: FplusHttp,
    private readonly base: BaseUrl,
  ) {}

  private async req<T>(method: string, path: string, opts: Parameters<FplusHttp['request']>[3] = {}) {
    return this.http.request<T>(await this.base(), method, path, { label: 'ConfigStore', ...opts });
  }

  /** The entry, or undefined when there is none. */
  async get<T = Json>(app: string, obj: string): Promise<T | undefined> {
    const res = await this.req<T>('GET', `v2/app/${app}/object/${obj}`, { accept: [404] });
    return res.status === 404 ? undefined : res.body;
  }

  async getWithEtag<T = Json>(app: string, obj: string): Promise<{ value: T; etag: string | null } | undefined> {
    const res = await this.req<T>('GET', `v2/app/${app}/object/${obj}`, { accept: [404] });
    return res.status === 404 ? undefined : { value: res.body, etag: res.headers.get('etag') };
  }

  async put(app: string, obj: string, value: unknown): Promise<void> {
    await this.req('PUT', `v2/app/${app}/object/${obj}`, { body: value });
  }

  async patch(app: string, obj: string, patch: unknown): Promise<void> {
    await this.req('PATCH', `v2/app/${app}/object/${obj}`, {
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  /** Deletes an entry; true if it existed. */
  async delete(app: string, obj: string): Promise<boolean> {
    const res = await this.req('DELETE', `v2/app/${app}/object/${obj}`, { accept: [404] });
    return res.status !== 404;
  }

  /** Objects that have an entry in the app. */
  async list(app: string): Promise<string[]> {
    const res = await this.req<string[]>('GET', `v2/app/${app}/object`, { accept: [404] });
    return res.status === 404 ? [] : res.body;
  }

  /**
   * Selected properties of every entry of an app in one request (the v1
   * search with `@NAME=PATH` pairs): `{object: {name: value}}`, absent
   * properties left out.
   */
  async select(app: string, fields: readonly string[]): Promise<Record<string, Record<string, Json>>> {
    const query = fields.map((f) => `@${encodeURIComponent(f)}=${encodeURIComponent(f)}`).join('&');
    const res = await this.req<Record<string, Record<string, Json>>>('GET', `v1/app/${app}/search?${query}`, {
      accept: [404],
    });
    return res.status === 404 ? {} : res.body;
  }

  /** Creates an object of a class and returns its UUID. */
  async createObject(klass: string, uuid?: string): Promise<string> {
    const res = await this.req<{ uuid: string }>('POST', 'v2/object', {
      body: uuid ? { class: klass, uuid } : { class: klass },
      idempotent: uuid !== undefined,
    });
    return res.body.uuid;
  }

  async registration(
    obj: string,
  ): Promise<{ uuid: string; class: string; owner: string; deleted: boolean } | undefined> {
    const res = await this.req<{ uuid: string; class: string; owner: string; deleted: boolean }>(
      'GET',
      `v2/object/${obj}`,
      { accept: [404] },
    );
    return res.status === 404 ? undefined : res.body;
  }

  /** Removes an object outright; false if it did not exist. */
  async deleteObject(obj: string): Promise<boolean> {
    const res = await this.req('DELETE', `v2/object/${obj}`, { accept: [404] });
    return res.status !== 404;
  }

  async addMember(klass: string, obj: string): Promise<void> {
    await this.req('PUT', `v2/class/${klass}/direct/member/${obj}`);
  }

  /** Removes a direct membership; false if either side is unknown. */
  async removeMember(klass: string, obj: string): Promise<boolean> {
    const res = await this.req('DELETE', `v2/class/${klass}/direct/member/${obj}`, { accept: [404] });
    return res.status !== 404;
  }

  async isDirectMember(klass: string, obj: string): Promise<boolean> {
    const res = await this.req('GET', `v2/class/${klass}/direct/member/${obj}`, { accept: [404] });
    return res.status !== 404;
  }
}
