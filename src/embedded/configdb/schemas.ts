import { Ajv, type AnySchema, type ErrorObject, type Options } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import { HttpError } from '../../lib/http-errors.js';
import type { Json } from '../../lib/merge-patch.js';
import { isJsonObject } from '../../lib/merge-patch.js';

// ajv-formats is CommonJS; depending on the loader its plugin is the module
// itself or its `default` property.
const addFormats = ((formatsModule as unknown as { default?: typeof formatsModule.default }).default ??
  formatsModule) as unknown as typeof formatsModule.default;

export interface SchemaValidator {
  /** Returns undefined when the value is valid, otherwise the error list. */
  (value: Json): ValidationFailure | undefined;
}

export interface ValidationFailure {
  message: string;
  errors: Array<{ path: string; message: string }>;
}

const OPTIONS: Options = { allErrors: true, strict: false, validateFormats: true };

function ajvFor(schema: Json): { ajv: Ajv | Ajv2019 | Ajv2020; schema: AnySchema } {
  const declared = isJsonObject(schema) && typeof schema.$schema === 'string' ? schema.$schema : undefined;
  let ajv: Ajv | Ajv2019 | Ajv2020;
  let s: Json = schema;
  if (declared === undefined || declared.includes('2020-12')) ajv = new Ajv2020(OPTIONS);
  else if (declared.includes('2019-09')) ajv = new Ajv2019(OPTIONS);
  else if (declared.includes('draft-07')) ajv = new Ajv(OPTIONS);
  else {
    // Older drafts have no meta-schema loaded; their keywords are close
    // enough to draft-07 for the schemas Factory+ uses.
    ajv = new Ajv(OPTIONS);
    const { $schema: _ignored, ...rest } = schema as { [k: string]: Json };
    s = rest;
  }
  addFormats(ajv);
  return { ajv, schema: s as AnySchema };
}

function describe(errors: ErrorObject[] | null | undefined): ValidationFailure {
  const list = (errors ?? []).map((e) => {
    let msg = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties' && e.params && 'additionalProperty' in e.params) {
      msg = `${msg}: ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
    }
    if (e.keyword === 'enum' && e.params && 'allowedValues' in e.params) {
      msg = `${msg}: ${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)}`;
    }
    return { path: e.instancePath || '/', message: msg };
  });
  const message = list.map((e) => `${e.path === '/' ? 'config' : `config${e.path}`} ${e.message}`).join('; ');
  return { message: message || 'value does not match the schema', errors: list };
}

/**
 * Compiles an application's JSON schema. Each schema gets its own Ajv
 * instance so that `$id`s of replaced schemas never collide. The dialect is
 * chosen from `$schema` (2020-12 when absent, as the ConfigDB does).
 * A schema that does not compile is a 422.
 */
export function compileSchema(schema: Json): SchemaValidator {
  if (typeof schema !== 'boolean' && !isJsonObject(schema)) {
    throw new HttpError(422, 'a JSON schema must be an object or a boolean');
  }
  let validate: ReturnType<Ajv['compile']>;
  try {
    const { ajv, schema: s } = ajvFor(schema);
    validate = ajv.compile(s);
  } catch (e) {
    throw new HttpError(422, `invalid JSON schema: ${(e as Error).message}`);
  }
  return (value: Json) => (validate(value) ? undefined : describe(validate.errors));
}
