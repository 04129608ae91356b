/**
 * Sparkplug B payload encoding and decoding over `proto/sparkplug_b.proto`.
 *
 * The schema is loaded once (on first use, or explicitly with
 * `loadSparkplugSchema()` to fail fast at startup). The file is found by
 * walking up from this module's directory until `proto/sparkplug_b.proto`
 * exists, which works both from `src/lib/sparkplug/` (tsx) and from the
 * compiled output (`dist/lib/sparkplug/` or `dist/src/lib/sparkplug/`).
 *
 * See `types.ts` for how each Sparkplug data type is represented in
 * JavaScript. Encoding validates values against their declared type and
 * throws `SparkplugEncodeError`; decoding anything that is not a valid
 * Sparkplug B payload throws `SparkplugDecodeError`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  DataType,
  type DataTypeName,
  type MetricValue,
  type ScalarTypeName,
  type ScalarValue,
  type SparkplugDataSet,
  type SparkplugMetaData,
  type SparkplugMetric,
  type SparkplugPayload,
  type SparkplugPropertySet,
  type SparkplugPropertyValue,
  type SparkplugTemplate,
  type SparkplugTemplateParameter,
} from './types.js';

class SparkplugError extends Error {
  override name = 'SparkplugError';
}

/** The value given cannot be encoded as Sparkplug B. */
export class SparkplugEncodeError extends SparkplugError {
  override name = 'SparkplugEncodeError';
}

/** The bytes are not a valid Sparkplug B payload. */
export class SparkplugDecodeError extends SparkplugError {
  override name = 'SparkplugDecodeError';
}

// ---------------------------------------------------------------------------
// Schema loading

const PROTO_FILE = join('proto', 'sparkplug_b.proto');
const PAYLOAD_TYPE = 'org.eclipse.tahu.protobuf.Payload';

/** Finds `proto/sparkplug_b.proto` in `start` or the nearest ancestor directory. */
export function findSparkplugProto(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    const candidate = join(dir, PROTO_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new SparkplugError(`Cannot find ${PROTO_FILE} in ${start} or any parent directory`);
    dir = parent;
  }
}

let payloadType: protobuf.Type | undefined;

/** Loads (once) and returns the protobuf `Payload` message type. */
export function loadSparkplugSchema(): protobuf.Type {
  if (!payloadType) {
    const root = protobuf.loadSync(findSparkplugProto());
    payloadType = root.lookupType(PAYLOAD_TYPE);
  }
  return payloadType;
}

// ---------------------------------------------------------------------------
// Shared helpers

/** Plain object in protobufjs' camelCase field naming. */
type Pb = Record<string, unknown>;

interface PbLong {
  low: number;
  high: number;
  unsigned: boolean;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const DATA_TYPE_NAMES = new Map<number, DataTypeName>(
  Object.entries(DataType).map(([name, n]) => [n, name as DataTypeName]),
);

const SCALAR_TYPES = new Set<DataTypeName>([
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Float',
  'Double',
  'Boolean',
  'String',
  'DateTime',
  'Text',
  'UUID',
]);

/** The name of a Sparkplug DataType number, or undefined if not defined by the specification. */
function dataTypeName(n: number): DataTypeName | undefined {
  return DATA_TYPE_NAMES.get(n);
}

export function isScalarType(t: string): t is ScalarTypeName {
  return SCALAR_TYPES.has(t as DataTypeName);
}

function isArrayType(t: DataTypeName): boolean {
  return DataType[t] >= DataType.Int8Array && DataType[t] <= DataType.DateTimeArray;
}

/** Width and signedness of the 8..32-bit integer types. */
const SMALL_INTS: Partial<Record<DataTypeName, { bits: bigint; signed: boolean }>> = {
  Int8: { bits: 8n, signed: true },
  Int16: { bits: 16n, signed: true },
  Int32: { bits: 32n, signed: true },
  UInt8: { bits: 8n, signed: false },
  UInt16: { bits: 16n, signed: false },
  UInt32: { bits: 32n, signed: false },
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function longBits(b: bigint): PbLong {
  const u = BigInt.asUintN(64, b);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: true };
}

/** Number when it is a safe integer, bigint otherwise. */
function safeNumber(b: bigint): number | bigint {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b;
}

// ---------------------------------------------------------------------------
// Encoding

function encFail(where: string, msg: string): never {
  throw new SparkplugEncodeError(`${where}: ${msg}`);
}

function toBigInt(v: unknown, where: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return encFail(where, `expected an integer (number or bigint), got ${describe(v)}`);
}

function encUInt64(v: unknown, where: string): PbLong {
  const b = toBigInt(v, where);
  if (b < 0n || b > U64_MAX) encFail(where, `${b} is out of range for an unsigned 64-bit field`);
  return longBits(b);
}

function encString(v: unknown, where: string): string {
  if (typeof v !== 'string') encFail(where, `expected a string, got ${describe(v)}`);
  return v;
}

function encBool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') encFail(where, `expected a boolean, got ${describe(v)}`);
  return v;
}

/** The oneof field and protobuf value for a scalar; field names are shared by all value holders. */
function encScalar(type: ScalarTypeName, v: unknown, where: string): [string, unknown] {
  const small = SMALL_INTS[type];
  if (small) {
    const b = toBigInt(v, where);
    const min = small.signed ? -(1n << (small.bits - 1n)) : 0n;
    const max = small.signed ? (1n << (small.bits - 1n)) - 1n : (1n << small.bits) - 1n;
    if (b < min || b > max) encFail(where, `${b} is out of range for ${type}`);
    // Negative values are sent as 32-bit two's complement in the uint32 field.
    return ['intValue', Number(BigInt.asUintN(32, b))];
  }
  switch (type) {
    case 'Int64': {
      const b = toBigInt(v, where);
      if (b < I64_MIN || b > I64_MAX) encFail(where, `${b} is out of range for Int64`);
      return ['longValue', longBits(b)];
    }
    case 'UInt64':
      return ['longValue', encUInt64(v, where)];
    case 'DateTime': {
      if (v instanceof Date) {
        const ms = v.getTime();
        if (Number.isNaN(ms)) encFail(where, 'invalid Date');
        v = ms;
      }
      return ['longValue', encUInt64(v, where)];
    }
    case 'Float':
    case 'Double':
      if (typeof v !== 'number') encFail(where, `expected a number for ${type}, got ${describe(v)}`);
      return [type === 'Float' ? 'floatValue' : 'doubleValue', v];
    case 'Boolean':
      return ['booleanValue', encBool(v, where)];
    case 'String':
    case 'Text':
    case 'UUID':
      return ['stringValue', encString(v, where)];
    default:
      return encFail(where, `${String(type)} is not a scalar type`);
  }
}

function encScalarTypeName(t: unknown, where: string): ScalarTypeName {
  if (typeof t !== 'string' || !isScalarType(t)) encFail(where, `expected a scalar data type, got ${describe(t)}`);
  return t;
}

function encDataSet(ds: unknown, where: string): Pb {
  if (!isRecord(ds)) encFail(where, `expected a DataSet object, got ${describe(ds)}`);
  const { columns, types, rows } = ds as Partial<SparkplugDataSet>;
  if (!Array.isArray(columns) || !Array.isArray(types) || !Array.isArray(rows)) {
    encFail(where, 'a DataSet needs columns, types and rows arrays');
  }
  if (columns.length !== types.length) encFail(where, `${columns.length} columns but ${types.length} types`);
  const typeNames = types.map((t, i) => encScalarTypeName(t, `${where} column ${i}`));
  return {
    numOfColumns: longBits(BigInt(columns.length)),
    columns: columns.map((c, i) => encString(c, `${where} column ${i} name`)),
    types: typeNames.map((t) => DataType[t]),
    rows: rows.map((row, r) => {
      if (!Array.isArray(row) || row.length !== columns.length) {
        encFail(`${where} row ${r}`, `expected an array of ${columns.length} values`);
      }
      return {
        elements: row.map((v, c) => {
          if (v === null || v === undefined) return {};
          const [field, pv] = encScalar(typeNames[c], v, `${where} row ${r} column ${c}`);
          return { [field]: pv };
        }),
      };
    }),
  };
}

function encTemplate(t: unknown, where: string): Pb {
  if (!isRecord(t)) encFail(where, `expected a Template object, got ${describe(t)}`);
  const tpl = t as SparkplugTemplate;
  const out: Pb = {};
  if (tpl.version !== undefined) out.version = encString(tpl.version, `${where} version`);
  if (tpl.templateRef !== undefined) out.templateRef = encString(tpl.templateRef, `${where} templateRef`);
  if (tpl.isDefinition !== undefined) out.isDefinition = encBool(tpl.isDefinition, `${where} isDefinition`);
  if (tpl.metrics !== undefined) {
    if (!Array.isArray(tpl.metrics)) encFail(where, 'template metrics must be an array');
    out.metrics = tpl.metrics.map((m, i) => encMetric(m, `${where} metric[${i}]`));
  }
  if (tpl.parameters !== undefined) {
    if (!Array.isArray(tpl.parameters)) encFail(where, 'template parameters must be an array');
    out.parameters = tpl.parameters.map((p: SparkplugTemplateParameter, i) => {
      const pw = `${where} parameter[${i}]`;
      if (!isRecord(p)) encFail(pw, `expected an object, got ${describe(p)}`);
      const type = encScalarTypeName(p.type, pw);
      const po: Pb = { type: DataType[type] };
      if (p.name !== undefined) po.name = encString(p.name, `${pw} name`);
      if (p.value !== undefined) {
        const [field, v] = encScalar(type, p.value, pw);
        po[field] = v;
      }
      return po;
    });
  }
  return out;
}

function encPropertySet(ps: unknown, where: string): Pb {
  if (!isRecord(ps)) encFail(where, `expected a PropertySet object, got ${describe(ps)}`);
  const keys = Object.keys(ps);
  return { keys, values: keys.map((k) => encPropertyValue(ps[k], `${where}.${k}`)) };
}

function encPropertyValue(pv: unknown, where: string): Pb {
  if (!isRecord(pv)) encFail(where, `expected a property value object, got ${describe(pv)}`);
  const { type, value, isNull } = pv as Partial<SparkplugPropertyValue>;
  if (type === undefined) encFail(where, 'property value has no type');
  const datatype = (DataType as Record<string, number>)[type];
  if (datatype === undefined) encFail(where, `unknown data type ${describe(type)}`);
  const out: Pb = { type: datatype };
  if (isNull === true || value === null) {
    if (value !== null && value !== undefined) encFail(where, 'isNull is set but a value was given');
    out.isNull = true;
  } else if (value !== undefined) {
    if (type === 'PropertySet') out.propertysetValue = encPropertySet(value, where);
    else if (type === 'PropertySetList') {
      if (!Array.isArray(value)) encFail(where, `expected an array of PropertySets, got ${describe(value)}`);
      out.propertysetsValue = { propertyset: value.map((s, i) => encPropertySet(s, `${where}[${i}]`)) };
    } else {
      const [field, v] = encScalar(encScalarTypeName(type, where), value, where);
      out[field] = v;
    }
  }
  return out;
}

function encMetaData(md: unknown, where: string): Pb {
  if (!isRecord(md)) encFail(where, `expected a MetaData object, got ${describe(md)}`);
  const m = md as SparkplugMetaData;
  const out: Pb = {};
  if (m.isMultiPart !== undefined) out.isMultiPart = encBool(m.isMultiPart, `${where} isMultiPart`);
  for (const k of ['contentType', 'fileName', 'fileType', 'md5', 'description'] as const) {
    if (m[k] !== undefined) out[k] = encString(m[k], `${where} ${k}`);
  }
  if (m.size !== undefined) out.size = encUInt64(m.size, `${where} size`);
  if (m.seq !== undefined) out.seq = encUInt64(m.seq, `${where} seq`);
  return out;
}

function metricLabel(m: unknown, index: number, prefix = 'metric'): string {
  const name = isRecord(m) && typeof m.name === 'string' ? ` ${JSON.stringify(m.name)}` : '';
  return `${prefix}[${index}]${name}`;
}

function encMetric(m: unknown, where: string): Pb {
  if (!isRecord(m)) encFail(where, `expected a metric object, got ${describe(m)}`);
  const metric = m as Partial<SparkplugMetric>;
  const type = metric.type;
  const datatype = typeof type === 'string' ? (DataType as Record<string, number>)[type] : undefined;
  if (type === undefined || datatype === undefined) encFail(where, `unknown or missing data type ${describe(type)}`);
  const out: Pb = { datatype };
  if (metric.name !== undefined) out.name = encString(metric.name, `${where} name`);
  if (metric.alias !== undefined) out.alias = encUInt64(metric.alias, `${where} alias`);
  if (metric.timestamp !== undefined) out.timestamp = encUInt64(metric.timestamp, `${where} timestamp`);
  if (metric.isHistorical !== undefined) out.isHistorical = encBool(metric.isHistorical, `${where} isHistorical`);
  if (metric.isTransient !== undefined) out.isTransient = encBool(metric.isTransient, `${where} isTransient`);
  if (metric.metadata !== undefined) out.metadata = encMetaData(metric.metadata, `${where} metadata`);
  if (metric.properties !== undefined) out.properties = encPropertySet(metric.properties, `${where} properties`);

  const value = metric.value;
  if (metric.isNull === true || value === null) {
    if (value !== null && value !== undefined) encFail(where, 'isNull is set but a value was given');
    out.isNull = true;
    return out;
  }
  if (value === undefined) return out;

  if (isScalarType(type)) {
    const [field, v] = encScalar(type, value, where);
    out[field] = v;
  } else if (type === 'Bytes' || type === 'File' || isArrayType(type)) {
    if (!(value instanceof Uint8Array)) encFail(where, `expected a Uint8Array for ${type}, got ${describe(value)}`);
    out.bytesValue = value;
  } else if (type === 'DataSet') {
    out.datasetValue = encDataSet(value, where);
  } else if (type === 'Template') {
    out.templateValue = encTemplate(value, where);
  } else {
    encFail(where, `type ${type} cannot carry a metric value`);
  }
  return out;
}

/** Encodes a payload to Sparkplug B protobuf bytes; throws `SparkplugEncodeError` on invalid input. */
export function encodePayload(p: SparkplugPayload): Uint8Array {
  if (!isRecord(p)) encFail('payload', `expected an object, got ${describe(p)}`);
  const out: Pb = {};
  if (p.timestamp !== undefined) out.timestamp = encUInt64(p.timestamp, 'payload timestamp');
  if (p.seq !== undefined) out.seq = encUInt64(p.seq, 'payload seq');
  if (p.uuid !== undefined) out.uuid = encString(p.uuid, 'payload uuid');
  if (p.body !== undefined) {
    if (!(p.body instanceof Uint8Array)) encFail('payload body', `expected a Uint8Array, got ${describe(p.body)}`);
    out.body = p.body;
  }
  if (p.metrics !== undefined) {
    if (!Array.isArray(p.metrics)) encFail('payload metrics', 'expected an array');
    out.metrics = p.metrics.map((m, i) => encMetric(m, metricLabel(m, i)));
  }
  const type = loadSparkplugSchema();
  try {
    return type.encode(out).finish();
  } catch (err) {
    throw new SparkplugEncodeError(`payload: ${(err as Error).message}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------
// Decoding

function decFail(where: string, msg: string): never {
  throw new SparkplugDecodeError(`Invalid Sparkplug B payload: ${where}: ${msg}`);
}

const VALUE_FIELDS = [
  'intValue',
  'longValue',
  'floatValue',
  'doubleValue',
  'booleanValue',
  'stringValue',
  'bytesValue',
  'datasetValue',
  'templateValue',
  'propertysetValue',
  'propertysetsValue',
  'extensionValue',
] as const;

function presentField(o: Pb): string | undefined {
  return VALUE_FIELDS.find((f) => o[f] !== undefined);
}

function decType(n: unknown, where: string): DataTypeName {
  const name = typeof n === 'number' ? dataTypeName(n) : undefined;
  if (!name) decFail(where, `unknown data type ${describe(n)}`);
  return name;
}

function decUInt64(v: unknown): number | bigint {
  return safeNumber(typeof v === 'bigint' ? v : BigInt(v as number));
}

function decBytes(v: unknown): Uint8Array {
  return new Uint8Array(v as Uint8Array);
}

/** Decodes the value of a scalar-typed holder, or undefined if it carries none. */
function decScalar(type: ScalarTypeName, o: Pb, where: string): ScalarValue | undefined {
  const field = presentField(o);
  if (field === undefined) return undefined;
  const mismatch = (): never => decFail(where, `${type} value carried in ${field}`);

  const small = SMALL_INTS[type];
  if (small || type === 'Int64' || type === 'UInt64' || type === 'DateTime') {
    // Integers are accepted from either integer field: encoders differ on
    // where UInt32 goes, and a 64-bit field may carry any smaller integer.
    let raw: bigint;
    let width: bigint;
    if (field === 'intValue') {
      raw = BigInt(o.intValue as number);
      width = 32n;
    } else if (field === 'longValue') {
      raw = o.longValue as bigint;
      width = 64n;
    } else return mismatch();

    if (type === 'Int64') return BigInt.asIntN(Number(width), raw);
    if (type === 'UInt64') return raw;
    if (type === 'DateTime') return safeNumber(raw);
    const { bits, signed } = small!;
    if (!signed) {
      if (raw >= 1n << bits) decFail(where, `${raw} is out of range for ${type}`);
      return Number(raw);
    }
    const min = -(1n << (bits - 1n));
    const max = (1n << (bits - 1n)) - 1n;
    // Sign-extended two's complement in the field's full width...
    let v = BigInt.asIntN(Number(width), raw);
    if (v < min || v > max) {
      // ...or two's complement in the type's own width.
      if (raw >= 1n << bits) decFail(where, `${raw} is out of range for ${type}`);
      v = BigInt.asIntN(Number(bits), raw);
    }
    return Number(v);
  }
  switch (type) {
    case 'Float':
    case 'Double':
      if (field !== 'floatValue' && field !== 'doubleValue') return mismatch();
      return o[field] as number;
    case 'Boolean':
      if (field !== 'booleanValue') return mismatch();
      return o.booleanValue as boolean;
    case 'String':
    case 'Text':
    case 'UUID':
      if (field !== 'stringValue') return mismatch();
      return o.stringValue as string;
  }
  return mismatch();
}

/** Best-effort value for a metric whose sender gave no data type. */
function decUntyped(o: Pb): MetricValue | undefined {
  const field = presentField(o);
  switch (field) {
    case 'intValue':
    case 'floatValue':
    case 'doubleValue':
    case 'booleanValue':
    case 'stringValue':
      return o[field] as ScalarValue;
    case 'longValue':
      return o.longValue as bigint;
    case 'bytesValue':
      return decBytes(o.bytesValue);
    default:
      return undefined;
  }
}

function decScalarType(n: unknown, where: string): ScalarTypeName {
  const t = decType(n, where);
  if (!isScalarType(t)) decFail(where, `${t} is not a scalar data type`);
  return t;
}

function decDataSet(o: Pb, where: string): SparkplugDataSet {
  const columns = (o.columns as string[] | undefined) ?? [];
  const rawTypes = (o.types as number[] | undefined) ?? [];
  const n = o.numOfColumns !== undefined ? Number(o.numOfColumns as bigint) : columns.length;
  if (rawTypes.length < n) decFail(where, `DataSet has ${n} columns but ${rawTypes.length} types`);
  const types = rawTypes.slice(0, n).map((t, i) => decScalarType(t, `${where} column ${i}`));
  const rows = ((o.rows as Pb[] | undefined) ?? []).map((row, r) => {
    const elements = (row.elements as Pb[] | undefined) ?? [];
    return types.map((t, c) => {
      const e = elements[c];
      return e === undefined ? null : (decScalar(t, e, `${where} row ${r} column ${c}`) ?? null);
    });
  });
  return { columns: columns.slice(0, n), types, rows };
}

function decTemplate(o: Pb, where: string): SparkplugTemplate {
  const t: SparkplugTemplate = {};
  if (o.version !== undefined) t.version = o.version as string;
  if (o.templateRef !== undefined) t.templateRef = o.templateRef as string;
  if (o.isDefinition !== undefined) t.isDefinition = o.isDefinition as boolean;
  if (o.metrics !== undefined) {
    t.metrics = (o.metrics as Pb[]).map((m, i) => decMetric(m, metricLabel(m, i, `${where} metric`)));
  }
  if (o.parameters !== undefined) {
    t.parameters = (o.parameters as Pb[]).map((p, i) => {
      const pw = `${where} parameter[${i}]`;
      const param: SparkplugTemplateParameter = { type: decScalarType(p.type, pw) };
      if (p.name !== undefined) param.name = p.name as string;
      const v = decScalar(param.type, p, pw);
      if (v !== undefined) param.value = v;
      return param;
    });
  }
  return t;
}

function decPropertySet(o: Pb, where: string): SparkplugPropertySet {
  const keys = (o.keys as string[] | undefined) ?? [];
  const values = (o.values as Pb[] | undefined) ?? [];
  if (keys.length !== values.length) decFail(where, `PropertySet has ${keys.length} keys but ${values.length} values`);
  const out: SparkplugPropertySet = {};
  keys.forEach((k, i) => {
    out[k] = decPropertyValue(values[i], `${where}.${k}`);
  });
  return out;
}

function decPropertyValue(o: Pb, where: string): SparkplugPropertyValue {
  const t = decType(o.type, where);
  if (!isScalarType(t) && t !== 'PropertySet' && t !== 'PropertySetList') {
    decFail(where, `${t} is not a property value type`);
  }
  const pv: SparkplugPropertyValue = { type: t };
  if (o.isNull === true) {
    pv.isNull = true;
    pv.value = null;
  } else if (t === 'PropertySet') {
    if (o.propertysetValue !== undefined) pv.value = decPropertySet(o.propertysetValue as Pb, where);
  } else if (t === 'PropertySetList') {
    const list = o.propertysetsValue as Pb | undefined;
    if (list !== undefined) {
      pv.value = ((list.propertyset as Pb[] | undefined) ?? []).map((s, i) => decPropertySet(s, `${where}[${i}]`));
    }
  } else {
    const v = decScalar(t, o, where);
    if (v !== undefined) pv.value = v;
  }
  return pv;
}

function decMetaData(o: Pb): SparkplugMetaData {
  const md: SparkplugMetaData = {};
  if (o.isMultiPart !== undefined) md.isMultiPart = o.isMultiPart as boolean;
  for (const k of ['contentType', 'fileName', 'fileType', 'md5', 'description'] as const) {
    if (o[k] !== undefined) md[k] = o[k] as string;
  }
  if (o.size !== undefined) md.size = decUInt64(o.size);
  if (o.seq !== undefined) md.seq = decUInt64(o.seq);
  return md;
}

function decMetric(o: Pb, where: string): SparkplugMetric {
  const type: DataTypeName = o.datatype === undefined ? 'Unknown' : decType(o.datatype, where);
  const m: SparkplugMetric = { type };
  if (o.name !== undefined) m.name = o.name as string;
  if (o.alias !== undefined) m.alias = decUInt64(o.alias);
  if (o.timestamp !== undefined) m.timestamp = decUInt64(o.timestamp);
  if (o.isHistorical !== undefined) m.isHistorical = o.isHistorical as boolean;
  if (o.isTransient !== undefined) m.isTransient = o.isTransient as boolean;
  if (o.metadata !== undefined) m.metadata = decMetaData(o.metadata as Pb);
  if (o.properties !== undefined) m.properties = decPropertySet(o.properties as Pb, `${where} properties`);

  if (o.isNull === true) {
    m.isNull = true;
    m.value = null;
    return m;
  }
  let value: MetricValue | undefined;
  if (type === 'Unknown') {
    value = decUntyped(o);
  } else if (isScalarType(type)) {
    value = decScalar(type, o, where);
  } else {
    const field = presentField(o);
    if (field !== undefined) {
      if ((type === 'Bytes' || type === 'File' || isArrayType(type)) && field === 'bytesValue')
        value = decBytes(o.bytesValue);
      else if (type === 'DataSet' && field === 'datasetValue') value = decDataSet(o.datasetValue as Pb, where);
      else if (type === 'Template' && field === 'templateValue') value = decTemplate(o.templateValue as Pb, where);
      else decFail(where, `${type} value carried in ${field}`);
    }
  }
  if (value !== undefined) m.value = value;
  return m;
}

/**
 * Decodes Sparkplug B protobuf bytes. Anything that is not a valid payload
 * (truncated, not protobuf, unknown data types, values in the wrong field)
 * throws `SparkplugDecodeError`.
 */
export function decodePayload(buf: Uint8Array): SparkplugPayload {
  if (!(buf instanceof Uint8Array))
    throw new SparkplugDecodeError(`Invalid Sparkplug B payload: expected bytes, got ${describe(buf)}`);
  const type = loadSparkplugSchema();
  let o: Pb;
  try {
    o = type.toObject(type.decode(buf), { longs: BigInt, defaults: false, arrays: false }) as Pb;
  } catch (err) {
    throw new SparkplugDecodeError(`Invalid Sparkplug B payload: ${(err as Error).message}`, { cause: err });
  }
  try {
    const p: SparkplugPayload = {};
    if (o.timestamp !== undefined) p.timestamp = decUInt64(o.timestamp);
    if (o.seq !== undefined) p.seq = decUInt64(o.seq);
    if (o.uuid !== undefined) p.uuid = o.uuid as string;
    if (o.body !== undefined) p.body = decBytes(o.body);
    if (o.metrics !== undefined) p.metrics = (o.metrics as Pb[]).map((m, i) => decMetric(m, metricLabel(m, i)));
    return p;
  } catch (err) {
    if (err instanceof SparkplugDecodeError) throw err;
    throw new SparkplugDecodeError(`Invalid Sparkplug B payload: ${(err as Error).message}`, { cause: err });
  }
}
