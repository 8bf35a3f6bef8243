// Test fixture (not imported by production code): two IPC ports without processes, delivering
// structured clones on the next turn as Node's "advanced" IPC serialization does, and counting the
// messages each side sends (the channel sends one per loop turn with calls in it).

import { EventEmitter } from 'node:events';
import type { IpcPort } from './channel.ts';

export class TestPort extends EventEmitter implements IpcPort {
  peer: TestPort | undefined;
  sent = 0;
  connected = true;
  send(message: unknown): boolean {
    if (!this.connected) throw new Error('channel closed');
    this.sent++;
    const copy = structuredClone(message);
    setImmediate(() => this.peer?.emit('message', copy));
    return true;
  }
}

export function portPair(): [TestPort, TestPort] {
  const a = new TestPort();
  const b = new TestPort();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
