// Compiled by ../hooks.mjs in boot.test.ts: TypeScript forms the appliance uses, and what the
// compiled code looks like at run time, reported as one JSON line on stdout.

import type { Clock } from '../../src/core/ports.ts';
import { sha256 } from '../../src/core/crypto/sha256.ts';

class Counter {
  count = 10;
  constructor(private readonly step: number) {}
  next(): number {
    return (this.count += this.step);
  }
}

const clock: Clock = { now: () => 7 };
const double = (n: number): number => n * 2;

function failHere(): never {
  throw new Error('from the fixture'); // line 19: the stack must name it
}

let stack = '';
try {
  failHere();
} catch (e) {
  stack = (e as Error).stack ?? '';
}

const counter = new Counter(5);
process.stdout.write(
  JSON.stringify({
    counter: [counter.next(), counter.next()],
    now: clock.now(),
    digest: Buffer.from(sha256(new TextEncoder().encode('abc'))).toString('hex'),
    names: [double.name, Counter.name, failHere.name],
    compiled: [double.toString(), Counter.toString()],
    stack,
  }) + '\n',
);
