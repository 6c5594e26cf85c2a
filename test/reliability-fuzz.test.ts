// Issue 7, fuzz: fast-check throws random frames at dist/server.js, a fixed number of runs from a fixed seed —
// random HTTP/2 frames after the preface, random gRPC requests (paths, headers, message frames whose flags
// and lengths may lie), random bytes at the TLS port. After every run the process must be up and a good
// SayHello must succeed; every random gRPC request must be answered (a status or a reset), never left
// hanging. A failure prints fast-check's seed and the shrunk counterexample, to replay with `seed`; FUZZ_SEED=<n>
// tries other cases than the suite's.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import {
  grpcFrame,
  h2Frame,
  h2Session,
  H2_EMPTY_SETTINGS,
  H2_PREFACE,
  helloRequest,
  rawExchange,
  rawRequest,
  SAY_HELLO,
} from './helpers/raw-grpc.ts';
import { spawnServer, type SpawnedServer } from './helpers/spawn.ts';
import type { Client } from '@grpc/grpc-js';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';

/** The same cases every run, so that a pass means the same on a busy machine as on an idle one. */
const SEED = Number(process.env.FUZZ_SEED ?? 20_190_807);
/** per property: far above what its runs take on a busy machine (a few seconds) */
const TIMEOUT_MS = 120_000;

let plain: SpawnedServer;
let secure: SpawnedServer;
let plainClient: Client;
let secureClient: Client;
const tally = { runs: 0, crashes: 0, nextCallFailures: 0 };

beforeAll(async () => {
  [plain, secure] = await Promise.all([spawnServer(['-access_log=false']), spawnServer(['-tls', '-access_log=false'])]);
  plainClient = greeterClient(plain.address);
  secureClient = greeterClient(secure.address, {});
});
afterAll(() => {
  process.stdout.write(`reliability-fuzz: ${tally.runs} runs, ${tally.crashes} crashes, ${tally.nextCallFailures} next-call failures\n`);
  plainClient?.close();
  secureClient?.close();
  for (const s of [plain, secure]) s?.child.kill('SIGKILL');
});

/** The property's tail: the server is up and answers a good call. Returns false (a failed run) otherwise. */
async function serverStillServes(s: SpawnedServer, client: Client): Promise<boolean> {
  tally.runs++;
  if (s.child.exitCode !== null || s.child.signalCode !== null) {
    tally.crashes++;
    return false;
  }
  const answer = await sayHello(client, 'next', { deadlineMs: 5000 });
  if (answer.err || answer.reply?.message !== 'Hello next') {
    tally.nextCallFailures++;
    return false;
  }
  return true;
}

async function check<T>(property: fc.IAsyncPropertyWithHooks<[T]>, numRuns: number): Promise<number> {
  const details = await fc.check(property, { numRuns, seed: SEED });
  if (details.failed) {
    throw new Error(
      `fuzz failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}): ` +
        `${fc.stringify(details.counterexample)}\n${details.errorInstance ?? ''}\nserver stderr: ${plain.stderr()}${secure.stderr()}`,
    );
  }
  return details.numRuns;
}

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

describe('fuzz: random input never takes the server down', () => {
  it('random HTTP/2 frames after the preface', { timeout: TIMEOUT_MS }, async () => {
    const frame = fc.record({
      type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 255 })), // known types mostly
      flags: fc.integer({ min: 0, max: 255 }),
      streamId: fc.oneof(fc.constantFrom(0, 1, 3, 5), fc.integer({ min: 0, max: 0x7fffffff })),
      payload: bytes(48),
      lengthLie: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 64 }) }),
    });
    const input = fc.record({ settingsFirst: fc.boolean(), frames: fc.array(frame, { minLength: 1, maxLength: 6 }) });
    const runs = await check(
      fc.asyncProperty(input, async ({ settingsFirst, frames }) => {
        const wire = frames.map((f) => h2Frame(f.type, f.flags, f.streamId, f.payload, Math.max(0, f.payload.length + f.lengthLie)));
        await rawExchange(plain.address, Buffer.concat([H2_PREFACE, ...(settingsFirst ? [H2_EMPTY_SETTINGS] : []), ...wire]), 100);
        return serverStillServes(plain, plainClient);
      }),
      200,
    );
    expect(runs).toBe(200);
  });

  it('random gRPC requests: every one is answered with a status or a reset, none hangs', { timeout: TIMEOUT_MS }, async () => {
    const anyString = fc.string({ maxLength: 12 });
    const message = fc.oneof(
      fc.string({ maxLength: 40 }).map((name) => helloRequest(name)),
      bytes(40),
    );
    const chunk = fc.oneof(
      { weight: 3, arbitrary: fc.record({ payload: message, compressed: fc.boolean(), lengthLie: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.constant(0x7fffffff)) }) },
      { weight: 1, arbitrary: bytes(24).map((raw) => ({ raw })) },
    );
    const request = fc.record({
      path: fc.oneof(
        { weight: 4, arbitrary: fc.constant(SAY_HELLO) },
        { weight: 1, arbitrary: fc.constantFrom('/grpc.health.v1.Health/Check', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '/helloworld.Greeter/', '/', '/helloworld.Greeter/SayHello/x') },
        { weight: 1, arbitrary: anyString.map((s) => `/${s}`) },
      ),
      contentType: fc.option(fc.constantFrom('application/grpc', 'application/grpc+proto', 'application/grpc+json', 'application/grpcx', 'text/html'), { nil: undefined }),
      encoding: fc.option(fc.constantFrom('identity', 'gzip', 'deflate', 'snappy', ''), { nil: undefined }),
      deadline: fc.constantFrom('20m', '100m', '150000u'),
      // a random grpc-timeout, used only when the request is complete (END_STREAM): one that grpc-js does not
      // read as a deadline leaves an unfinished request waiting for the rest, as gRPC should. grpc-js finds a
      // deadline anywhere in the value (its regex is unanchored: "x3Hy" is 3 hours), so those are left out.
      randomTimeout: fc.option(anyString.filter((t) => !/\d\s*[HMSmun]/.test(t)), { nil: undefined }),
      delay: fc.option(fc.oneof(fc.constantFrom('0', '5', '-1', '1e3', 'NaN', ' 7 '), anyString), { nil: undefined }),
      failCode: fc.option(fc.oneof(fc.constantFrom('OK', '14', 'unavailable', '99', '-1'), anyString), { nil: undefined }),
      te: fc.boolean(),
      chunks: fc.array(chunk, { maxLength: 3 }),
      endStream: fc.boolean(),
    });
    let session: ClientHttp2Session | undefined;
    const runs = await check(
      fc.asyncProperty(request, async (r) => {
        if (!session || session.closed || session.destroyed) session = await h2Session(plain.address);
        const timeout = r.endStream && r.randomTimeout !== undefined ? r.randomTimeout : r.deadline;
        const headers: OutgoingHttpHeaders = { ':method': 'POST', ':path': r.path, 'grpc-timeout': timeout };
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.encoding !== undefined) headers['grpc-encoding'] = r.encoding;
        if (r.delay !== undefined) headers['x-helloworld-delay-ms'] = r.delay;
        if (r.failCode !== undefined) headers['x-helloworld-fail-code'] = r.failCode;
        if (r.te) headers.te = 'trailers';
        const body = r.chunks.map((c) =>
          'raw' in c ? c.raw : grpcFrame(c.payload, { compressed: c.compressed, length: c.lengthLie === 0x7fffffff ? c.lengthLie : Math.max(0, c.payload.length + c.lengthLie) }),
        );
        let answer;
        try {
          // a request that is not gRPC is answered at once (415 and words) and ends with the request: wait less for it
          const notGrpc = !r.contentType?.startsWith('application/grpc');
          answer = await rawRequest(session, headers, body, { keepOpen: !r.endStream, waitMs: notGrpc && !r.endStream ? 300 : 4000 });
        } catch {
          session = undefined; // headers node:http2 itself refuses to send
          return serverStillServes(plain, plainClient);
        }
        if (answer.error && /ERR_HTTP2_INVALID|ERR_INVALID_CHAR|ERR_HTTP2_HEADER/.test(answer.error)) {
          session.destroy(); // a header node:http2 refused to send: not the server's doing
          session = undefined;
        } else if (answer.timedOut && !(answer.httpStatus === 415 && answer.data.length > 0)) {
          // the server left the request hanging past its deadline (a 415 with its words is an answer: it ends with the request)
          return false;
        }
        return serverStillServes(plain, plainClient);
      }),
      100,
    );
    session?.destroy();
    expect(runs).toBe(100);
  });

  it('random bytes at the TLS port, with and without a TLS record header', { timeout: TIMEOUT_MS }, async () => {
    const input = fc.record({
      header: fc.constantFrom(Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01]), Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x01])),
      body: bytes(300),
    });
    const runs = await check(
      fc.asyncProperty(input, async ({ header, body }) => {
        await rawExchange(secure.address, Buffer.concat([header, body]), 100);
        return serverStillServes(secure, secureClient);
      }),
      50,
    );
    expect(runs).toBe(50);
  });
});
