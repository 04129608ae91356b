export * from './types.js';
export { loadConfig, ConfigError } from './load.js';
