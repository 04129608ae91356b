/**
 * The command line's exit codes, and the one error type that carries one.
 * Scripts branch on the code, so each answer of the service maps to exactly
 * one of them.
 */
export const EXIT = { done: 0, failed: 1, usage: 2, notFound: 3, notPermitted: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure to report in one line (never a stack) with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: ExitCode = EXIT.failed,
  ) {
    super(message);
  }
}

/** The exit code for an HTTP answer that is not a success. */
export function exitCodeOf(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.notPermitted;
  if (status === 404) return EXIT.notFound;
  // The service checked what the caller gave (a secret name, a scope) and refused it.
  if (status === 400) return EXIT.usage;
  return EXIT.failed;
}
