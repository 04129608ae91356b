import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The shared Factory+ reference material beside the repository (test input only). */
export const referenceRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/reference');

export function referencePath(rel: string): string {
  return resolve(referenceRoot, rel);
}
