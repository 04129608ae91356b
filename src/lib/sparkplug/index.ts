/**
 * Sparkplug B: payload codec and topic names. Knows nothing about the
 * Cluster Manager or Factory+; see `types.ts` for the value mapping.
 */
export * from './types.js';
export {
  SparkplugEncodeError,
  SparkplugDecodeError,
  encodePayload,
  decodePayload,
  isScalarType,
  findSparkplugProto,
  loadSparkplugSchema,
} from './codec.js';
export * from './topic.js';
