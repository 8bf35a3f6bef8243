// Reference §1.3 and §3 (dstack event log, RTMR replay, app identity, MRCONFIGID) on the dstack
// fixtures: GetQuote quote-report (v0.5, digests given), tdx-lite (OS 0.6 stripped form, RTMR3
// digests recomputed), simulator v0.5.5 and the HEAD simulator fixture; plus V2 (JCS) digests.

import { describe, expect, it } from 'vitest';

import { concatBytes, fromHex, toHex, utf8 } from '../src/bytes.ts';
import { keccak_256, sha384 } from '../src/crypto.ts';
import { parseQuote } from '../src/quote.ts';
import { checkMrConfigId, extractAppIdentity } from '../src/dstack/app-identity.ts';
import { parseEventLog, replayRtmrs, runtimeEventPreimage, type TdxEvent } from '../src/dstack/event-log.ts';
import { expectedVector, vectorJson, vectorQuote, vectorText } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts';

interface Fixture {
  readonly id: string;
  readonly quote: () => Uint8Array;
  readonly log: () => string | unknown[];
}

const FIXTURES: readonly Fixture[] = [
  {
    id: 'dstack_verifier_quote_report',
    quote: () => vectorQuote('dstack_verifier_quote-report.json'),
    log: () => (vectorJson('dstack_verifier_quote-report.json') as { event_log: string }).event_log,
  },
  {
    id: 'dstack_verifier_tdx_lite',
    quote: () => vectorQuote('dstack_verifier_tdx-lite-getquote.json'),
    log: () => {
      const e = (vectorJson('dstack_verifier_tdx-lite-getquote.json') as { event_log: unknown }).event_log;
      return typeof e === 'string' ? e : (e as unknown[]);
    },
  },
  { id: 'dstack_sim_v055', quote: () => vectorQuote('dstack_sim_v055_quote.hex'), log: () => vectorText('dstack_sim_v055_eventlog.json') },
  {
    id: 'dstack_sim_fixture',
    quote: () => vectorQuote('dstack_sim_fixture_quote.bin'),
    log: () => vectorJson('dstack_sim_fixture_eventlog.json') as unknown[],
  },
];

function tdOf(quote: Uint8Array) {
  const q = parseQuote(quote);
  if (q.report.type === 'sgx') throw new Error('expected a TD report');
  return q.report.td;
}

describe('all four RTMRs replay to the quoted values', () => {
  for (const f of FIXTURES) {
    it(f.id, () => {
      const td = tdOf(f.quote());
      const rtmrs = replayRtmrs(parseEventLog(f.log()));
      expect(rtmrs.map(toHex)).toEqual([td.rtmr0, td.rtmr1, td.rtmr2, td.rtmr3].map(toHex));
      const expected = expectedVector(f.id).event_log_replay;
      if (expected !== undefined) expect(toHex(rtmrs[3])).toBe(expected.rtmr3.replayed);
    });
  }

  it('tdx-lite is the stripped form: every RTMR3 digest is empty and is recomputed', () => {
    const events = parseEventLog(FIXTURES[1]!.log());
    const rt = events.filter((e) => e.imr === 3);
    expect(rt.length).toBeGreaterThan(5);
    expect(rt.every((e) => e.givenDigest.length === 0)).toBe(true);
  });
});

describe('app identity from the events before system-ready', () => {
  for (const f of FIXTURES) {
    it(f.id, () => {
      const app = extractAppIdentity(parseEventLog(f.log()));
      const want = expectedVector(f.id).event_log_replay!.runtime_events_before_system_ready;
      expect(toHex(app.appId)).toBe(want['app-id']);
      expect(toHex(app.composeHash)).toBe(want['compose-hash']);
      expect(app.instanceId === undefined ? '' : toHex(app.instanceId)).toBe(want['instance-id']);
      expect(app.osImageHash === undefined ? undefined : toHex(app.osImageHash)).toBe(want['os-image-hash']);
      expect(JSON.stringify(app.keyProvider)).toBe(want['key-provider']);
    });
  }

  it('quote-report: one application event after system-ready', () => {
    const app = extractAppIdentity(parseEventLog(FIXTURES[0]!.log()));
    expect(app.appEvents.map((e) => e.name)).toEqual(['LIUM_MINER_HOTKEY']);
    expect(app.keyProvider?.name).toBe('local-sgx');
  });

  it('sim fixture: the KMS key-provider id is the SPKI of the KMS CA in appkeys.json', () => {
    const app = extractAppIdentity(parseEventLog(FIXTURES[3]!.log()));
    expect(app.keyProvider?.name).toBe('kms');
    expect(app.keyProvider?.id.startsWith('3059301306072a8648ce3d0201')).toBe(true);
  });
});

describe('MRCONFIGID consistency (§3.1)', () => {
  it('tdx-lite and the sim fixture carry v1 = 01 ‖ compose-hash, which matches', () => {
    for (const f of [FIXTURES[1]!, FIXTURES[3]!]) {
      const td = tdOf(f.quote());
      expect(td.mrConfigId[0]).toBe(1);
      expect(() => checkMrConfigId(td.mrConfigId, extractAppIdentity(parseEventLog(f.log())))).not.toThrow();
    }
  });

  it('zero MRCONFIGID (quote-report) is accepted as unused', () => {
    const f = FIXTURES[0]!;
    expect(() => checkMrConfigId(tdOf(f.quote()).mrConfigId, extractAppIdentity(parseEventLog(f.log())))).not.toThrow();
  });

  it('v1 with another compose hash → MR_CONFIG_ID_MISMATCH; v2 computed as keccak(compose ‖ app ‖ kind ‖ id)', () => {
    const app = extractAppIdentity(parseEventLog(FIXTURES[3]!.log()));
    const v1 = new Uint8Array(48);
    v1[0] = 1;
    expect(codeOf(() => checkMrConfigId(v1, app))).toBe('MR_CONFIG_ID_MISMATCH');
    const v2 = new Uint8Array(48);
    v2[0] = 2;
    const kmsId = fromHex(app.keyProvider!.id, 'INVALID_ARGUMENT');
    v2.set(keccak_256(concatBytes(app.composeHash, app.appId, new Uint8Array([2]), kmsId)), 1);
    expect(() => checkMrConfigId(v2, app)).not.toThrow();
    v2[5]! ^= 1;
    expect(codeOf(() => checkMrConfigId(v2, app))).toBe('MR_CONFIG_ID_MISMATCH');
    const v3 = new Uint8Array(48);
    v3[0] = 3;
    expect(codeOf(() => checkMrConfigId(v3, app))).toBe('MR_CONFIG_ID_UNSUPPORTED');
  });
});

describe('tampering with the event log', () => {
  const entries = (): Record<string, unknown>[] => JSON.parse(FIXTURES[0]!.log() as string) as Record<string, unknown>[];
  const rtmr3 = (): string => toHex(tdOf(FIXTURES[0]!.quote()).rtmr3);
  const appIdIndex = (list: Record<string, unknown>[]): number => list.findIndex((e) => e['event'] === 'app-id');

  it('a changed runtime payload with its original digest → EVENT_LOG_DIGEST_MISMATCH', () => {
    const list = entries();
    list[appIdIndex(list)]!['event_payload'] = '00'.repeat(20);
    expect(codeOf(() => replayRtmrs(parseEventLog(list)))).toBe('EVENT_LOG_DIGEST_MISMATCH');
  });

  it('a changed runtime payload with its digest removed (stripped form) replays to another RTMR3', () => {
    const list = entries();
    const i = appIdIndex(list);
    list[i]!['event_payload'] = '00'.repeat(20);
    list[i]!['digest'] = '';
    expect(toHex(replayRtmrs(parseEventLog(list))[3])).not.toBe(rtmr3());
  });

  it('a dropped, reordered or injected runtime event replays to another RTMR3', () => {
    const dropped = entries().filter((e) => e['event'] !== 'instance-id');
    expect(toHex(replayRtmrs(parseEventLog(dropped))[3])).not.toBe(rtmr3());
    const swapped = entries();
    const i = appIdIndex(swapped);
    [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
    expect(toHex(replayRtmrs(parseEventLog(swapped))[3])).not.toBe(rtmr3());
    const injected = entries();
    injected.splice(appIdIndex(injected), 0, { imr: 3, event_type: 0x08000001, digest: '', event: 'app-id', event_payload: '11'.repeat(20) });
    expect(toHex(replayRtmrs(parseEventLog(injected))[3])).not.toBe(rtmr3());
  });

  it('a duplicated system event before system-ready → APP_IDENTITY_INCOMPLETE', () => {
    const list = entries();
    list.splice(appIdIndex(list), 0, { ...list[appIdIndex(list)]! });
    expect(codeOf(() => extractAppIdentity(parseEventLog(list)))).toBe('APP_IDENTITY_INCOMPLETE');
  });

  it('no system-ready, or no app-id → APP_IDENTITY_INCOMPLETE', () => {
    expect(codeOf(() => extractAppIdentity(parseEventLog(entries().filter((e) => e['event'] !== 'system-ready'))))).toBe(
      'APP_IDENTITY_INCOMPLETE',
    );
    expect(codeOf(() => extractAppIdentity(parseEventLog(entries().filter((e) => e['event'] !== 'app-id'))))).toBe(
      'APP_IDENTITY_INCOMPLETE',
    );
  });

  it('an app-id event after system-ready is an application event, not the identity', () => {
    const list = entries();
    list.push({ imr: 3, event_type: 0x08000001, digest: '', event: 'app-id', event_payload: '22'.repeat(20) });
    const app = extractAppIdentity(parseEventLog(list));
    expect(toHex(app.appId)).toBe('3763bc34552cf3a27ff71ad5f7a90471562a1a2d');
    expect(app.appEvents.map((e) => e.name)).toEqual(['LIUM_MINER_HOTKEY', 'app-id']);
  });

  it('malformed entries → EVENT_LOG_MALFORMED', () => {
    const bad: unknown[] = [
      'not json',
      '{}',
      [{ imr: 4, event_type: 1, digest: '00'.repeat(48), event: '', event_payload: '' }],
      [{ imr: 0, event_type: 1, digest: '', event: '', event_payload: '' }],
      [{ imr: 0, event_type: 1, digest: '00'.repeat(47), event: '', event_payload: '' }],
      [{ imr: 3, event_type: 0x08000001, digest: '', event: 'x', event_payload: 'zz' }],
      [{ imr: 3, event_type: 0x08000001, digest: '', event: 'x', event_payload: '', version: 3 }],
      [{ imr: 3, event_type: 0x08000001, digest: '', event: '\ud800', event_payload: '' }],
      new Array(1025).fill({ imr: 3, event_type: 0x08000001, digest: '', event: 'x', event_payload: '' }),
    ];
    for (const b of bad) expect(codeOf(() => parseEventLog(b as string | unknown[]))).toBe('EVENT_LOG_MALFORMED');
  });

  it('a malformed key-provider payload → EVENT_LOG_MALFORMED; a wrong-size app-id → EVENT_LOG_MALFORMED', () => {
    const list = entries();
    const kp = list.findIndex((e) => e['event'] === 'key-provider');
    list[kp]!['event_payload'] = toHex(utf8('{"name":1}'));
    list[kp]!['digest'] = '';
    expect(codeOf(() => extractAppIdentity(parseEventLog(list)))).toBe('EVENT_LOG_MALFORMED');
    const list2 = entries();
    const i = appIdIndex(list2);
    list2[i]!['event_payload'] = '00'.repeat(19);
    list2[i]!['digest'] = '';
    expect(codeOf(() => extractAppIdentity(parseEventLog(list2)))).toBe('EVENT_LOG_MALFORMED');
  });
});

describe('runtime event digests', () => {
  it('V1: sha384(le32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload)', () => {
    const pre = runtimeEventPreimage('app-id', new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 1);
    expect(toHex(pre)).toBe(`01000008${toHex(utf8(':app-id:'))}deadbeef`);
  });

  it('V2: the JCS text dstack hashes, with JSON escapes and verbatim non-ASCII', () => {
    const text = (name: string, payload: number[]): string => new TextDecoder().decode(runtimeEventPreimage(name, new Uint8Array(payload), 2));
    expect(text('compose-hash', [0xab, 0xcd])).toBe('{"name":"compose-hash","payload":"abcd","type":134217729}');
    expect(text('event"with\\special\nchars', [0xff])).toBe('{"name":"event\\"with\\\\special\\nchars","payload":"ff","type":134217729}');
    expect(text('\x08\x0c\n\r\t\x01', [])).toBe('{"name":"\\b\\f\\n\\r\\t\\u0001","payload":"","type":134217729}');
    expect(text('测试-emoji-🦀', [])).toBe('{"name":"测试-emoji-🦀","payload":"","type":134217729}');
  });

  it('a log mixing V1 and "version":2 events replays with each event\'s own digest', () => {
    const v2Digest = sha384(utf8('{"name":"compose-hash","payload":"0304","type":134217729}'));
    const events = parseEventLog([
      { imr: 3, event_type: 0x08000001, digest: '', event: 'app-id', event_payload: '0102' },
      { imr: 3, event_type: 0x08000001, digest: toHex(v2Digest), event: 'compose-hash', event_payload: '0304', version: 2 },
    ]);
    const d1 = sha384(concatBytes(new Uint8Array([1, 0, 0, 8]), utf8(':app-id:'), new Uint8Array([1, 2])));
    let r = sha384(concatBytes(new Uint8Array(48), d1));
    r = sha384(concatBytes(r, v2Digest));
    expect(toHex(replayRtmrs(events)[3])).toBe(toHex(r));
    const asV1: TdxEvent = { ...events[1]!, version: 1 };
    expect(codeOf(() => replayRtmrs([asV1]))).toBe('EVENT_LOG_DIGEST_MISMATCH');
  });
});
