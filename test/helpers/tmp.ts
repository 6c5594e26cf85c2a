import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new directory under this run's temporary root (test/helpers/global-setup.ts removes it at the end). */
export function testTmpDir(prefix: string): string {
  return mkdtempSync(join(process.env.GRPC_HELLOWORLD_TEST_TMP ?? tmpdir(), prefix));
}
