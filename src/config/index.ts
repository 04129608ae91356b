export * from './types.js';
export { loadConfig, ConfigError, overlay, configDir } from './load.js';
export { envBindings } from './env.js';
