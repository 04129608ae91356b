import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePrivateDir, writePrivateFile } from '../lib/private-files.js';

export interface Credential {
  username: string;
  password: string;
}

export interface CoreCredentials {
  admin: Credential;
  clusterManager: Credential;
  configdb: Credential;
}

/** Where the admin password came from on this start. */
export type AdminPasswordSource = 'generated' | 'kept' | 'given';

function generate(username: string): Credential {
  return { username, password: randomBytes(18).toString('base64url') };
}

/**
 * Passwords of the embedded core's accounts, made on first start and kept in
 * the data directory (mode 0600) so that a restart keeps them.
 */
export function loadCredentials(
  dataDir: string,
  adminUsername: string,
  adminPassword?: string,
): { credentials: CoreCredentials; admin: AdminPasswordSource } {
  makePrivateDir(dataDir);
  const file = join(dataDir, 'credentials.json');
  let creds: CoreCredentials;
  let admin: AdminPasswordSource = 'kept';
  if (existsSync(file)) {
    creds = JSON.parse(readFileSync(file, 'utf8')) as CoreCredentials;
  } else {
    creds = {
      admin: generate(adminUsername),
      clusterManager: generate('sv1clustermanager'),
      configdb: generate('sv1configdb'),
    };
    admin = 'generated';
  }
  if (adminPassword) {
    creds.admin = { username: adminUsername, password: adminPassword };
    admin = 'given';
  }
  writePrivateFile(file, `${JSON.stringify(creds, null, 2)}\n`);
  return { credentials: creds, admin };
}
