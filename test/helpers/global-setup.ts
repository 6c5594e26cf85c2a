// One temporary directory per test run, removed at the end whatever the workers did: helpers make their
// temporary files under it (testTmpDir), so a run leaves nothing behind in /tmp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'grpc-helloworld-tests-'));
  process.env.GRPC_HELLOWORLD_TEST_TMP = dir; // inherited by the test workers
  return () => rmSync(dir, { recursive: true, force: true });
}
