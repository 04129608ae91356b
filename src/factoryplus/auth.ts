import type { FplusHttp } from './http.js';
import type { BaseUrl } from './configdb.js';

export interface AclEntry {
  permission: string;
  target: string;
}

export interface GrantSpec {
  principal: string;
  permission: string;
  target: string;
  plural: boolean;
}

/** Client of the Auth service's v2 API. */
export class AuthClient {
  constructor(
    private readonly http: FplusHttp,
    private readonly base: BaseUrl,
  ) {}

  private async req<T>(method: string, path: string, opts: Parameters<FplusHttp['request']>[3] = {}) {
    return this.http.request<T>(await this.base(), method, path, { label: 'Auth', ...opts });
  }

  /** ACL of a principal given by UUID, or by Kerberos UPN. */
  async acl(principal: { uuid: string } | { upn: string }, opts: { timeoutMs?: number } = {}): Promise<AclEntry[]> {
    const path =
      'uuid' in principal ? `v2/acl/${principal.uuid}` : `v2/acl/kerberos/${encodeURIComponent(principal.upn)}`;
    const res = await this.req<AclEntry[]>('GET', path, { accept: [404], timeoutMs: opts.timeoutMs });
    return res.status === 404 ? [] : res.body;
  }

  /**
   * Adds a grant and answers its UUID; an identical grant that exists
   * already is answered with its own UUID (200), as ACS Auth does.
   */
  async addGrant(g: GrantSpec): Promise<string> {
    return (await this.req<{ uuid: string }>('POST', 'v2/grant', { body: g })).body.uuid;
  }

  /** One grant; undefined if it is gone. Needs Manage ACL on the grant's permission. */
  async getGrant(uuid: string): Promise<(GrantSpec & { uuid: string }) | undefined> {
    const res = await this.req<GrantSpec & { uuid: string }>('GET', `v2/grant/${uuid}`, { accept: [404] });
    return res.status === 404 ? undefined : res.body;
  }

  /** Deletes a grant; false if it was already gone. */
  async deleteGrant(uuid: string): Promise<boolean> {
    const res = await this.req('DELETE', `v2/grant/${uuid}`, { accept: [404] });
    return res.status !== 404;
  }

  /** Sets a principal's Kerberos identity; an identical existing one is fine. */
  async setKerberos(principal: string, upn: string): Promise<void> {
    await this.req('PUT', `v2/principal/${principal}/kerberos`, { body: upn });
  }

  async getKerberos(principal: string): Promise<string | undefined> {
    const res = await this.req<string>('GET', `v2/principal/${principal}/kerberos`, { accept: [404] });
    return res.status === 404 ? undefined : res.body;
  }

  /** Removes a principal's Kerberos identity; false if it had none. */
  async deleteKerberos(principal: string): Promise<boolean> {
    const res = await this.req('DELETE', `v2/principal/${principal}/kerberos`, { accept: [404] });
    return res.status !== 404;
  }

  async whoami(): Promise<string> {
    return (await this.req<string>('GET', 'v2/whoami/uuid')).body;
  }
}
