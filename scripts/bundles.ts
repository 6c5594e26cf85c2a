// Each program's bundle in dist/. The client is CommonJS: an exec probe pays for every millisecond of start,
// and an ES module costs more to start (bench/probe.ts measures it), while a CommonJS bundle takes Node's
// built-ins through require() as they are. The server stays an ES module.
export const BUNDLE_FILES = { server: 'server.js', client: 'client.cjs' } as const;

export type Program = keyof typeof BUNDLE_FILES;
