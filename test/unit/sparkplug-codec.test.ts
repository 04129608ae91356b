import { dirname, join } from 'node:path';
import { expect } from 'chai';
// Namespace import: the package is CommonJS with __esModule set, so its default export is not reliable.
import * as spPayload from 'sparkplug-payload';
import {
  DataType,
  SparkplugDecodeError,
  SparkplugEncodeError,
  decodePayload,
  encodePayload,
  findSparkplugProto,
  loadSparkplugSchema,
  type SparkplugMetric,
  type SparkplugPayload,
} from '../../src/lib/sparkplug/index.js';
import { prng } from '../helpers/random.js';

/** The independent decoder/encoder (protobufjs 6 with its own bundled schema). */
const independent = spPayload.get('spBv1.0')!;

/** A 64-bit value as `{low, high}`, which both protobufjs versions accept for 64-bit fields. */
function longBits(v: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: true };
}

/** Reads a number or Long from the independent decoder as a bigint, signed or unsigned. */
function asBigInt(v: unknown, signed: boolean): bigint {
  if (typeof v === 'number') return BigInt(v);
  const { low, high } = v as { low: number; high: number };
  const u = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  return signed ? BigInt.asIntN(64, u) : u;
}

function roundTrip(p: SparkplugPayload): SparkplugPayload {
  return decodePayload(encodePayload(p));
}

const TWO_53 = 2n ** 53n;

/** Metrics covering every type used by the project, with edge values. */
const TYPED_METRICS: SparkplugMetric[] = [
  { name: 'uuid', type: 'UUID', value: 'af15f175-78a0-4e05-97c0-2a0bb82b9f3b' },
  { name: 'empty-uuid', type: 'UUID', value: '' },
  { name: 'string', type: 'String', value: 'héllo / wörld ✓' },
  { name: 'text', type: 'Text', value: 'line 1\nline 2' },
  { name: 'true', type: 'Boolean', value: true },
  { name: 'false', type: 'Boolean', value: false },
  { name: 'int8-min', type: 'Int8', value: -128 },
  { name: 'int8-max', type: 'Int8', value: 127 },
  { name: 'int16-min', type: 'Int16', value: -32768 },
  { name: 'int32-min', type: 'Int32', value: -2147483648 },
  { name: 'int32-max', type: 'Int32', value: 2147483647 },
  { name: 'int32-neg', type: 'Int32', value: -7 },
  { name: 'uint8-max', type: 'UInt8', value: 255 },
  { name: 'uint16-max', type: 'UInt16', value: 65535 },
  { name: 'int64-neg-one', type: 'Int64', value: -1n },
  { name: 'int64-min', type: 'Int64', value: -(2n ** 63n) },
  { name: 'int64-max', type: 'Int64', value: 2n ** 63n - 1n },
  { name: 'int64-beyond-2^53', type: 'Int64', value: TWO_53 + 1n },
  { name: 'int64-below-minus-2^53', type: 'Int64', value: -(TWO_53 + 3n) },
  { name: 'uint64-max', type: 'UInt64', value: 2n ** 64n - 1n },
  { name: 'uint64-beyond-2^53', type: 'UInt64', value: TWO_53 + 1n },
  { name: 'uint64-zero', type: 'UInt64', value: 0n },
  { name: 'double', type: 'Double', value: Math.PI },
  { name: 'double-neg', type: 'Double', value: -1e-300 },
  { name: 'float', type: 'Float', value: 1.5 },
  { name: 'float-neg', type: 'Float', value: -0.25 },
  { name: 'datetime', type: 'DateTime', value: 1_717_171_717_171 },
];

describe('Sparkplug B codec', () => {
  it('finds the schema file and numbers DataType as the specification does', () => {
    const found = findSparkplugProto();
    expect(found).to.match(/proto[/\\]sparkplug_b\.proto$/);
    // The same file is found from the compiled layouts under dist/.
    const repo = dirname(dirname(found));
    expect(findSparkplugProto(join(repo, 'dist', 'lib', 'sparkplug'))).to.equal(found);
    expect(findSparkplugProto(join(repo, 'dist', 'src', 'lib', 'sparkplug'))).to.equal(found);
    const schema = loadSparkplugSchema();
    expect(schema.fullName).to.equal('.org.eclipse.tahu.protobuf.Payload');
    const enumValues = schema.root.lookupEnum('org.eclipse.tahu.protobuf.DataType').values;
    expect({ ...enumValues }).to.deep.equal(DataType);
    expect(DataType.UUID).to.equal(15);
    expect(DataType.DateTime).to.equal(13);
    expect(DataType.UInt64).to.equal(8);
    expect(DataType.Template).to.equal(19);
    expect(DataType.DateTimeArray).to.equal(34);
  });

  describe('round trip', () => {
    it('keeps names, types and values of every scalar type', () => {
      const decoded = roundTrip({ metrics: TYPED_METRICS });
      expect(decoded.metrics).to.deep.equal(TYPED_METRICS);
    });

    it('decodes 64-bit integer metrics to bigint even when given as numbers', () => {
      const decoded = roundTrip({
        metrics: [
          { name: 'a', type: 'Int64', value: -42 },
          { name: 'b', type: 'UInt64', value: 7 },
          { name: 'c', type: 'Int64', value: Number.MAX_SAFE_INTEGER },
        ],
      });
      expect(decoded.metrics!.map((m) => m.value)).to.deep.equal([-42n, 7n, BigInt(Number.MAX_SAFE_INTEGER)]);
    });

    it('accepts bigint for small integer types and a Date for DateTime', () => {
      const when = new Date('2024-05-31T12:00:00.123Z');
      const decoded = roundTrip({
        metrics: [
          { name: 'i8', type: 'Int8', value: -5n },
          { name: 'u32', type: 'UInt32', value: 4294967295n },
          { name: 'dt', type: 'DateTime', value: when },
        ],
      });
      expect(decoded.metrics!.map((m) => m.value)).to.deep.equal([-5, 4294967295, when.getTime()]);
    });

    it('rounds Float values to single precision', () => {
      const [m] = roundTrip({ metrics: [{ name: 'f', type: 'Float', value: 0.1 }] }).metrics!;
      expect(m.value).to.equal(Math.fround(0.1));
    });

    it('keeps aliases (number when safe, bigint beyond 2^53) and alias-only metrics', () => {
      const decoded = roundTrip({
        metrics: [
          { name: 'with-alias', alias: 5, type: 'Int32', value: 1 },
          { alias: 6n, type: 'Boolean', value: true },
          { alias: 2n ** 60n, type: 'String', value: 'big alias' },
        ],
      });
      expect(decoded.metrics).to.deep.equal([
        { name: 'with-alias', alias: 5, type: 'Int32', value: 1 },
        { alias: 6, type: 'Boolean', value: true },
        { alias: 2n ** 60n, type: 'String', value: 'big alias' },
      ]);
    });

    it('keeps payload timestamp, seq, uuid and body, and metric timestamps and flags', () => {
      const now = Date.now();
      const p: SparkplugPayload = {
        timestamp: now,
        seq: 255,
        uuid: '11ad7b32-1d32-4c4a-b0c9-fa049208939a',
        body: new Uint8Array([0, 1, 2, 254, 255]),
        metrics: [{ name: 'm', type: 'UInt64', value: 3n, timestamp: now - 1, isHistorical: true, isTransient: false }],
      };
      expect(roundTrip(p)).to.deep.equal(p);
    });

    it('encodes an empty payload and a payload with only seq 0', () => {
      expect(roundTrip({})).to.deep.equal({});
      expect(roundTrip({ seq: 0 })).to.deep.equal({ seq: 0 });
    });

    it('represents null values with isNull', () => {
      const decoded = roundTrip({
        metrics: [
          { name: 'a', type: 'Int32', value: null },
          { name: 'b', type: 'String', isNull: true },
        ],
      });
      expect(decoded.metrics).to.deep.equal([
        { name: 'a', type: 'Int32', isNull: true, value: null },
        { name: 'b', type: 'String', isNull: true, value: null },
      ]);
    });

    it('keeps Bytes, DataSet, Template, metadata and property sets', () => {
      const p: SparkplugPayload = {
        metrics: [
          {
            name: 'bytes',
            type: 'Bytes',
            value: new Uint8Array([9, 8, 7]),
            metadata: { contentType: 'application/octet-stream', size: 3 },
          },
          {
            name: 'ds',
            type: 'DataSet',
            value: {
              columns: ['id', 'label', 'big'],
              types: ['Int32', 'String', 'UInt64'],
              rows: [
                [1, 'one', 2n ** 64n - 1n],
                [-2, 'two', null],
              ],
            },
          },
          {
            name: 'tpl',
            type: 'Template',
            value: {
              version: '1',
              templateRef: 'Motor',
              isDefinition: false,
              parameters: [{ name: 'rating', type: 'Double', value: 7.5 }],
              metrics: [{ name: 'rpm', type: 'Int64', value: -3n }],
            },
          },
          {
            name: 'with-props',
            type: 'Double',
            value: 20.5,
            properties: {
              engUnit: { type: 'String', value: 'degC' },
              quality: { type: 'Int32', value: 192 },
              missing: { type: 'Int32', isNull: true, value: null },
              nested: { type: 'PropertySet', value: { deep: { type: 'Boolean', value: true } } },
              list: { type: 'PropertySetList', value: [{ x: { type: 'UInt64', value: 1n } }, {}] },
            },
          },
        ],
      };
      expect(roundTrip(p)).to.deep.equal(p);
    });
  });

  describe('interoperability with sparkplug-payload', () => {
    it('our encoding decodes with the same names, types and values', () => {
      const now = Date.now();
      const metrics = TYPED_METRICS.map((m, i) => ({ ...m, alias: i + 1, timestamp: now }));
      const theirs = independent.decodePayload(
        encodePayload({ timestamp: now, seq: 17, uuid: '11ad7b32-1d32-4c4a-b0c9-fa049208939a', metrics }),
      );

      expect(Number(asBigInt(theirs.timestamp, false))).to.equal(now);
      expect(Number(asBigInt(theirs.seq, false))).to.equal(17);
      expect(theirs.uuid).to.equal('11ad7b32-1d32-4c4a-b0c9-fa049208939a');
      expect(theirs.metrics).to.have.length(metrics.length);

      theirs.metrics!.forEach((got, i) => {
        const want = metrics[i];
        expect(got.name, `name of ${want.name}`).to.equal(want.name);
        expect(got.type, `type of ${want.name}`).to.equal(want.type);
        expect(Number(asBigInt(got.alias, false)), `alias of ${want.name}`).to.equal(i + 1);
        expect(Number(asBigInt(got.timestamp, false)), `timestamp of ${want.name}`).to.equal(now);
        switch (want.type) {
          case 'Int64':
            expect(asBigInt(got.value, true), want.name).to.equal(want.value);
            break;
          case 'UInt64':
            expect(asBigInt(got.value, false), want.name).to.equal(want.value);
            break;
          case 'DateTime':
            expect(Number(asBigInt(got.value, false)), want.name).to.equal(want.value);
            break;
          default:
            expect(got.value, want.name).to.equal(want.value);
        }
      });
    });

    it('payloads it encodes decode with ours', () => {
      const now = Date.now();
      // Its encoder takes 64-bit values as numbers or Long-like {low, high}.
      const bits = (v: bigint) => longBits(v) as unknown as number;
      const bytes = independent.encodePayload({
        timestamp: now,
        seq: 4,
        uuid: '11ad7b32-1d32-4c4a-b0c9-fa049208939a',
        metrics: [
          { name: 'bdSeq', type: 'UInt64', value: 9 },
          { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
          { name: 'Schema_UUID', type: 'UUID', value: '05688a03-730e-4cda-9932-172e2c62e45c' },
          { name: 'Device_Information/Model', type: 'String', value: 'Model X' },
          { name: 'i8', type: 'Int8', value: -5 },
          { name: 'i16', type: 'Int16', value: -300 },
          { name: 'i32', type: 'Int32', value: -2147483648 },
          { name: 'u16', type: 'UInt16', value: 65535 },
          { name: 'u32', type: 'UInt32', value: 4000000000 },
          { name: 'i64', type: 'Int64', value: -5 },
          { name: 'i64-big', type: 'Int64', value: bits(-(TWO_53 + 3n)) },
          { name: 'u64-big', type: 'UInt64', value: bits(2n ** 64n - 2n) },
          { name: 'double', type: 'Double', value: Math.E },
          { name: 'float', type: 'Float', value: 2.5 },
          { name: 'dt', type: 'DateTime', value: now, alias: 12 },
          { name: 'null', type: 'String', value: null },
        ],
      });
      const ours = decodePayload(bytes);
      expect(ours.timestamp).to.equal(now);
      expect(ours.seq).to.equal(4);
      expect(ours.uuid).to.equal('11ad7b32-1d32-4c4a-b0c9-fa049208939a');
      expect(ours.metrics!.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([
        { name: 'bdSeq', type: 'UInt64', value: 9n },
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
        { name: 'Schema_UUID', type: 'UUID', value: '05688a03-730e-4cda-9932-172e2c62e45c' },
        { name: 'Device_Information/Model', type: 'String', value: 'Model X' },
        { name: 'i8', type: 'Int8', value: -5 },
        { name: 'i16', type: 'Int16', value: -300 },
        { name: 'i32', type: 'Int32', value: -2147483648 },
        { name: 'u16', type: 'UInt16', value: 65535 },
        // It carries UInt32 in long_value; ours writes int_value and reads either.
        { name: 'u32', type: 'UInt32', value: 4000000000 },
        { name: 'i64', type: 'Int64', value: -5n },
        { name: 'i64-big', type: 'Int64', value: -(TWO_53 + 3n) },
        { name: 'u64-big', type: 'UInt64', value: 2n ** 64n - 2n },
        { name: 'double', type: 'Double', value: Math.E },
        { name: 'float', type: 'Float', value: 2.5 },
        { name: 'dt', type: 'DateTime', value: now },
        { name: 'null', type: 'String', value: null },
      ]);
      expect(ours.metrics![14].alias).to.equal(12);
      expect(ours.metrics![15].isNull).to.equal(true);
    });
  });

  describe('invalid input', () => {
    const expectDecodeError = (bytes: Uint8Array, pattern: RegExp = /Invalid Sparkplug B payload/): void => {
      expect(() => decodePayload(bytes)).to.throw(SparkplugDecodeError, pattern);
    };

    it('throws SparkplugDecodeError for bytes that are not protobuf', () => {
      expectDecodeError(Buffer.from('this is not a protobuf payload'));
      expectDecodeError(new Uint8Array(16).fill(0xff));
    });

    it('throws for a truncated payload', () => {
      const full = encodePayload({ seq: 1, metrics: [{ name: 'some metric', type: 'String', value: 'some value' }] });
      expectDecodeError(full.subarray(0, full.length - 3));
    });

    it('throws for a non-byte argument', () => {
      expect(() => decodePayload('abc' as unknown as Uint8Array)).to.throw(SparkplugDecodeError);
    });

    it('throws for an unknown data type or a value in the wrong field', () => {
      const schema = loadSparkplugSchema();
      expectDecodeError(
        schema.encode({ metrics: [{ name: 'x', datatype: 99, intValue: 1 }] }).finish(),
        /unknown data type/,
      );
      expectDecodeError(
        schema.encode({ metrics: [{ name: 'x', datatype: 3, stringValue: 'no' }] }).finish(),
        /Int32 value carried in stringValue/,
      );
      expectDecodeError(
        schema.encode({ metrics: [{ name: 'x', datatype: 5, intValue: 300 }] }).finish(),
        /out of range for UInt8/,
      );
    });

    it('never throws anything but SparkplugDecodeError for random bytes', () => {
      const rand = prng(0x5eed);
      let rejected = 0;
      for (let i = 0; i < 2000; i++) {
        const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
        try {
          decodePayload(bytes);
        } catch (err) {
          expect(err).to.be.instanceOf(SparkplugDecodeError);
          rejected++;
        }
      }
      expect(rejected).to.be.greaterThan(1000);
    });

    it('rejects values that do not fit their declared type when encoding', () => {
      const bad: SparkplugMetric[] = [
        { name: 'a', type: 'Int8', value: 128 },
        { name: 'b', type: 'UInt8', value: -1 },
        { name: 'c', type: 'Int32', value: 1.5 },
        { name: 'd', type: 'Int64', value: 2n ** 63n },
        { name: 'e', type: 'UInt64', value: -1n },
        { name: 'f', type: 'String', value: 5 },
        { name: 'g', type: 'Boolean', value: 'true' },
        { name: 'h', type: 'UUID', value: true },
        { name: 'i', type: 'Double', value: '1.0' },
        { name: 'j', type: 'Bytes', value: 'abc' },
        { name: 'k', type: 'Nope' as 'String', value: 'x' },
        { name: 'l', type: 'Int32', isNull: true, value: 3 },
      ];
      for (const m of bad) {
        expect(() => encodePayload({ metrics: [m] }), m.name).to.throw(SparkplugEncodeError, /metric\[0\]/);
      }
      expect(() => encodePayload({ seq: -1 })).to.throw(SparkplugEncodeError, /seq/);
    });
  });
});
