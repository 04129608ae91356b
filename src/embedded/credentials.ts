import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Credential {
  username: string;
  password: string;
}

export interface CoreCredentials {
  admin: Credential;
  clusterManager: Credential;
  configdb: Credential;
}

function generate(username: string): Credential {
  return { username, password: randomBytes(18).toString('base64url') };
}

/**
 * Passwords of the embedded core's accounts, made on first start and kept in
 * the data directory (mode 0600) so that a restart keeps them.
 */
export function loadCredentials(dataDir: string, adminUsername: string, adminPassword?: string): CoreCredentials {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'credentials.json');
  let creds: CoreCredentials;
  if (existsSync(file)) {
    creds = JSON.parse(readFileSync(file, 'utf8')) as CoreCredentials;
  } else {
    creds = { admin: generate(adminUsername), clusterManager: generate('sv1clustermanager'), configdb: generate('sv1configdb') };
  }
  if (adminPassword) creds.admin = { username: adminUsername, password: adminPassword };
  writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  return creds;
}
