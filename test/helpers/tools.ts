import { findTool, missingMessage, TOOLS } from '../../scripts/check-tools.js';

/** A system tool the tests run, found where the pretest check (scripts/check-tools.ts) finds it. */
export function toolPath(command: string): string | undefined {
  const tool = TOOLS.find((t) => t.command === command);
  if (!tool) throw new Error(`${command} is not among the tools scripts/check-tools.ts checks`);
  return findTool(tool.command, tool.also);
}

/** Its path, or an error with the line that says how to install it. */
export function requireTool(command: string): string {
  const path = toolPath(command);
  if (!path) throw new Error(missingMessage(TOOLS.filter((t) => t.command === command)));
  return path;
}
