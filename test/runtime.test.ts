// The tests run on the image's Node major, whatever Node the machine has: the project brings Node 24.
import { expect, it } from 'vitest';

it('runs on Node 24, the runtime the image ships', () => {
  expect(process.versions.node.split('.')[0]).toBe('24');
});
