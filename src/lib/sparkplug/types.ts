/**
 * Friendly TypeScript view of Sparkplug B payloads.
 *
 * Value representation (both directions):
 *
 * | Sparkplug type                      | encode accepts          | decode returns                         |
 * |-------------------------------------|-------------------------|----------------------------------------|
 * | Int8, Int16, Int32                  | number, bigint          | number                                 |
 * | UInt8, UInt16, UInt32               | number, bigint          | number                                 |
 * | Int64, UInt64                       | number, bigint          | bigint (always, whatever its size)     |
 * | DateTime (ms since the Unix epoch)  | number, bigint, Date    | number (bigint only beyond 2^53 - 1)   |
 * | Float, Double                       | number                  | number                                 |
 * | Boolean                             | boolean                 | boolean                                |
 * | String, Text, UUID                  | string                  | string                                 |
 * | Bytes, File, and the *Array types   | Uint8Array              | Uint8Array (array types: packed bytes) |
 * | DataSet                             | SparkplugDataSet        | SparkplugDataSet                       |
 * | Template                            | SparkplugTemplate       | SparkplugTemplate                      |
 * | PropertySet, PropertySetList        | (property values only)  |                                        |
 *
 * Other 64-bit protobuf fields (payload `timestamp` and `seq`, metric
 * `alias` and `timestamp`, metadata `size` and `seq`) accept number or
 * bigint and decode to a number when it is a safe integer, else a bigint.
 */

/** Sparkplug B `DataType` enum, numbered exactly as in the specification. */
export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  PropertySet: 20,
  PropertySetList: 21,
  Int8Array: 22,
  Int16Array: 23,
  Int32Array: 24,
  Int64Array: 25,
  UInt8Array: 26,
  UInt16Array: 27,
  UInt32Array: 28,
  UInt64Array: 29,
  FloatArray: 30,
  DoubleArray: 31,
  BooleanArray: 32,
  StringArray: 33,
  DateTimeArray: 34,
} as const;

export type DataTypeName = keyof typeof DataType;

/** Types that fit the common value fields (int/long/float/double/bool/string). */
export type ScalarTypeName =
  | 'Int8'
  | 'Int16'
  | 'Int32'
  | 'Int64'
  | 'UInt8'
  | 'UInt16'
  | 'UInt32'
  | 'UInt64'
  | 'Float'
  | 'Double'
  | 'Boolean'
  | 'String'
  | 'DateTime'
  | 'Text'
  | 'UUID';

/** Array types: the value is carried as packed bytes. */
export type ArrayTypeName =
  | 'Int8Array'
  | 'Int16Array'
  | 'Int32Array'
  | 'Int64Array'
  | 'UInt8Array'
  | 'UInt16Array'
  | 'UInt32Array'
  | 'UInt64Array'
  | 'FloatArray'
  | 'DoubleArray'
  | 'BooleanArray'
  | 'StringArray'
  | 'DateTimeArray';

/** A 64-bit unsigned protobuf field that is not a metric value. */
export type UInt64Like = number | bigint;

export type ScalarValue = number | bigint | boolean | string;

export interface SparkplugDataSet {
  columns: string[];
  types: ScalarTypeName[];
  /** Each row has one value per column; `null` marks a missing element. */
  rows: (ScalarValue | null)[][];
}

export interface SparkplugTemplateParameter {
  name?: string;
  type: ScalarTypeName;
  value?: ScalarValue;
}

export interface SparkplugTemplate {
  version?: string;
  templateRef?: string;
  isDefinition?: boolean;
  metrics?: SparkplugMetric[];
  parameters?: SparkplugTemplateParameter[];
}

export type SparkplugPropertySet = Record<string, SparkplugPropertyValue>;

export interface SparkplugPropertyValue {
  type: ScalarTypeName | 'PropertySet' | 'PropertySetList';
  value?: ScalarValue | SparkplugPropertySet | SparkplugPropertySet[] | null;
  isNull?: boolean;
}

export interface SparkplugMetaData {
  isMultiPart?: boolean;
  contentType?: string;
  size?: UInt64Like;
  seq?: UInt64Like;
  fileName?: string;
  fileType?: string;
  md5?: string;
  description?: string;
}

export type MetricValue = ScalarValue | Date | Uint8Array | SparkplugDataSet | SparkplugTemplate | null;

export interface SparkplugMetric {
  name?: string;
  alias?: UInt64Like;
  /** Milliseconds since the Unix epoch. */
  timestamp?: UInt64Like;
  /** Required when encoding; `'Unknown'` on decode if the sender omitted it. */
  type: DataTypeName;
  /** `null` (or `isNull: true`) encodes a null value. */
  value?: MetricValue;
  isNull?: boolean;
  isHistorical?: boolean;
  isTransient?: boolean;
  metadata?: SparkplugMetaData;
  properties?: SparkplugPropertySet;
}

export interface SparkplugPayload {
  /** Milliseconds since the Unix epoch. */
  timestamp?: UInt64Like;
  metrics?: SparkplugMetric[];
  /** 0..255 for Sparkplug messages other than NDEATH/STATE. */
  seq?: UInt64Like;
  uuid?: string;
  body?: Uint8Array;
}
