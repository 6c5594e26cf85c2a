// What a stream's result carries (run.ts, RequestResult.stream): types only, so that naming them loads nothing.

export interface StreamResult {
  /** the messages it was to carry: -messages (replies asked for, or requests sent and so replies due) */
  asked: number;
  /** messages received */
  received: number;
  /** with -json: every message received, in order */
  messages?: ReceivedMessage[];
}

export interface ReceivedMessage {
  /** 1 for the first */
  index: number;
  text: string;
  /** the replica that sent it (the stream's `hostname` metadata) */
  hostname?: string;
  /** monotonic ms from the start of the request */
  msSinceStart: number;
}
