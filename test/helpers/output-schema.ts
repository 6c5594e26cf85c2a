// docs/client-output.schema.json compiled strictly (ajv), for the tests that check real -json documents against it.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { expect } from 'vitest';
import { root } from './spawn.ts';

const schema = JSON.parse(readFileSync(`${root}docs/client-output.schema.json`, 'utf8')) as object;
const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
export const validate = ajv.compile(schema);

export function expectValid(doc: unknown): void {
  const ok = validate(doc);
  expect(ok ? [] : validate.errors).toEqual([]);
}
