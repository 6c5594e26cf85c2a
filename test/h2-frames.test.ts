// FrameReader and Outbox (src/h2/frames.ts): cutting a peer's bytes into frames, the first step of every
// connection's reads, and joining the frames of a flush into its one write.
// The sessions and h2spec test it with peers; these pin what a handler sees when frames straddle reads, when
// it ends the session in the middle of a read, and when a frame is too large.
import { describe, expect, it } from 'vitest';
import { encodeFrame, ErrorCode, Flag, FrameReader, FrameType, H2ProtocolError, Outbox, type Frame } from '../src/h2/frames.ts';

const frames = [
  encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.alloc(6, 1)),
  encodeFrame(FrameType.HEADERS, 4, 1, Buffer.from('block')),
  encodeFrame(FrameType.DATA, 1, 1),
  encodeFrame(FrameType.DATA, 0, 3, Buffer.alloc(300, 7)),
];
const bytes = Buffer.concat(frames);
const seen = (f: Frame) => ({ type: f.type, flags: f.flags, streamId: f.streamId, payload: Buffer.from(f.payload).toString('hex') });
const expected = frames.map((f) => seen({ type: f[3]!, flags: f[4]!, streamId: f.readUInt32BE(5), payload: f.subarray(9) }));

describe('FrameReader', () => {
  it('hands every frame whole and in order, wherever the reads split them', () => {
    for (let a = 0; a <= bytes.length; a++) {
      for (const b of [a, Math.min(bytes.length, a + 1), Math.min(bytes.length, a + 9), bytes.length]) {
        const reader = new FrameReader();
        const got: ReturnType<typeof seen>[] = [];
        for (const chunk of [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]) reader.read(chunk, (f) => void got.push(seen(f)));
        expect(got).toEqual(expected);
        expect(reader.pending.length).toBe(0);
      }
    }
  });

  it('stops where a handler says so (it ended the session): the rest stays unread, and is handed on the next read', () => {
    const reader = new FrameReader();
    const got: number[] = [];
    reader.read(bytes, (f) => {
      got.push(f.type);
      return f.type !== FrameType.HEADERS;
    });
    expect(got).toEqual([FrameType.SETTINGS, FrameType.HEADERS]);
    expect(reader.pending).toEqual(Buffer.concat(frames.slice(2)));
    reader.read(Buffer.alloc(0), (f) => void got.push(f.type));
    expect(got).toEqual([FrameType.SETTINGS, FrameType.HEADERS, FrameType.DATA, FrameType.DATA]);
  });

  it('hands the frames before one larger than it takes, then throws FRAME_SIZE_ERROR with that frame left unread', () => {
    const reader = new FrameReader(100);
    const got: number[] = [];
    let thrown: unknown;
    try {
      reader.read(bytes, (f) => void got.push(f.streamId));
    } catch (err) {
      thrown = err;
    }
    expect(got).toEqual([0, 1, 1]);
    expect(thrown).toBeInstanceOf(H2ProtocolError);
    expect((thrown as H2ProtocolError).h2Code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(reader.pending).toEqual(frames[3]);
  });

  it('a handler that throws leaves the frames after it unread, and none handed twice', () => {
    const reader = new FrameReader();
    const got: number[] = [];
    expect(() =>
      reader.read(bytes, (f) => {
        got.push(f.type);
        if (f.type === FrameType.HEADERS) throw new H2ProtocolError('bad block');
      }),
    ).toThrow('bad block');
    expect(reader.pending).toEqual(Buffer.concat(frames.slice(2)));
    expect(got).toEqual([FrameType.SETTINGS, FrameType.HEADERS]);
  });
});

describe('Outbox', () => {
  it('joins whole frames and frames given by their fields into the bytes encodeFrame would give, in order', () => {
    const outbox = new Outbox();
    const payload = Buffer.from('a reply');
    outbox.add(frames[0]!);
    outbox.addFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from('block'));
    outbox.addFrame(FrameType.DATA, 0, 2 ** 31 - 1, payload);
    outbox.addFrame(FrameType.DATA, Flag.END_STREAM, 3, Buffer.alloc(0));
    outbox.add(frames[3]!);
    const expected = Buffer.concat([
      frames[0]!,
      encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from('block')),
      encodeFrame(FrameType.DATA, 0, 2 ** 31 - 1, payload),
      encodeFrame(FrameType.DATA, Flag.END_STREAM, 3),
      frames[3]!,
    ]);
    const taken = outbox.take();
    payload.write('changed'); // what was taken is a copy
    expect(taken).toEqual(expected);
    expect(outbox.empty).toBe(true);
  });

  it('hands a single whole frame over as it is, and is empty after a take or a clear', () => {
    const outbox = new Outbox();
    outbox.add(frames[1]!);
    expect(outbox.take()).toBe(frames[1]);
    outbox.addFrame(FrameType.DATA, 0, 1, Buffer.from('x'));
    outbox.clear();
    expect(outbox.empty).toBe(true);
    outbox.add(frames[2]!);
    expect(outbox.take()).toEqual(frames[2]);
  });
});
