// The simulated CVM's measured identity: dstack runtime events (reference §3.2) with V1 digests
// (§1.3), RTMR extend/replay from 48 zero bytes (§3.1), MRCONFIGID v1, mr_aggregated, and the
// Info `tcb_info` / `vm_config` texts. Everything here is deterministic from its inputs, so Info,
// the event log and the quote's RTMRs always agree.

import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { concatBytes, fromHex, toHex, utf8 } from '../core/bytes.ts';

/** One entry of the dstack event-log JSON (§1.3, `cc-eventlog/src/tdx.rs` TdxEvent). */
export interface EventLogEntry {
  /** 0-based RTMR index. */
  readonly imr: number;
  readonly event_type: number;
  /** hex, 48 bytes. */
  readonly digest: string;
  readonly event: string;
  /** hex. */
  readonly event_payload: string;
}

/** dstack runtime events use this TCG event type and always extend RTMR3 (§1.3). */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001;

/** V1 runtime-event digest: sha384(le32(0x08000001) ‖ ":" ‖ event ‖ ":" ‖ payload) (§1.3, §3.3). */
export function runtimeEventDigest(event: string, payload: Uint8Array): Uint8Array {
  const type = new Uint8Array(4);
  new DataView(type.buffer).setUint32(0, DSTACK_RUNTIME_EVENT_TYPE, true);
  return sha384(concatBytes(type, utf8(':'), utf8(event), utf8(':'), payload));
}

/** RTMR extend chain: start at 48 zero bytes, RTMR = SHA384(RTMR ‖ digest48) (§3.1). */
export function replayRtmr(digests: readonly Uint8Array[]): Uint8Array {
  let mr: Uint8Array = new Uint8Array(48);
  for (const d of digests) {
    if (d.length !== 48) throw new RangeError('rtmr digest must be 48 bytes');
    mr = sha384(concatBytes(mr, d));
  }
  return mr;
}

export interface KeyProviderInfo {
  readonly name: string;
  readonly id: string;
}

export interface PlatformInputs {
  readonly appId: Uint8Array;
  readonly instanceId: Uint8Array;
  /** The exact app-compose.json text; compose_hash = sha256 of its bytes (§3.2 item 3). */
  readonly appCompose: string;
  readonly osImageHash: Uint8Array;
  readonly keyProvider: KeyProviderInfo;
  /** 16 bytes; device_id = sha256(PPID) (§3.1). */
  readonly ppid: Uint8Array;
}

export interface SimulatedPlatform {
  readonly appId: Uint8Array;
  readonly instanceId: Uint8Array;
  readonly appCompose: string;
  readonly appName: string;
  readonly composeHash: Uint8Array;
  readonly osImageHash: Uint8Array;
  readonly deviceId: Uint8Array;
  readonly keyProviderInfo: string;
  readonly mrtd: Uint8Array;
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly mrAggregated: Uint8Array;
  readonly eventLog: readonly EventLogEntry[];
  readonly vmConfig: string;
}

// Dev "image": fixed labels, not real firmware. The same for every seed, as MRTD and RTMR0-2 depend
// only on the image and VM shape in a real CVM (§3.1). The labels say "dev" wherever they surface.
const DEV_IMAGE_LABEL = 'openkey-dev-simulator image v1';
const DEV_BOOT_EVENTS: readonly { imr: number; type: number; text: string }[] = [
  { imr: 0, type: 0x80000001, text: `${DEV_IMAGE_LABEL}: virtual hardware configuration` },
  { imr: 0, type: 0x00000004, text: `${DEV_IMAGE_LABEL}: separator` },
  { imr: 1, type: 0x80000003, text: `${DEV_IMAGE_LABEL}: kernel` },
  { imr: 2, type: 0x0000000d, text: `${DEV_IMAGE_LABEL}: kernel cmdline and initrd` },
];

/** The dev image's os_image_hash (what the KMS would report for a real image). */
export const DEV_OS_IMAGE_HASH: Uint8Array = sha256(utf8(`${DEV_IMAGE_LABEL}: os image`));

function appNameOf(appCompose: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(appCompose);
  } catch {
    return ''; // a non-JSON compose is still hashed and reported; it just has no name
  }
  if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && typeof parsed.name === 'string') return parsed.name;
  return '';
}

export function buildPlatform(p: PlatformInputs): SimulatedPlatform {
  const composeHash = sha256(utf8(p.appCompose));
  const keyProviderInfo = JSON.stringify({ name: p.keyProvider.name, id: p.keyProvider.id });
  const boot: EventLogEntry[] = DEV_BOOT_EVENTS.map((e) => {
    const payload = utf8(e.text);
    return { imr: e.imr, event_type: e.type, digest: toHex(sha384(payload)), event: '', event_payload: toHex(payload) };
  });
  // Runtime events in dstack's emission order (§3.2), without init scripts and GPU events.
  const runtime: [string, Uint8Array][] = [
    ['system-preparing', new Uint8Array(0)],
    ['app-id', p.appId],
    ['compose-hash', composeHash],
    ['instance-id', p.instanceId],
    ['boot-mr-done', new Uint8Array(0)],
    ['os-image-hash', p.osImageHash],
    ['key-provider', utf8(keyProviderInfo)],
    ['storage-fs', utf8('ext4')],
    ['system-ready', new Uint8Array(0)],
  ];
  const rt: EventLogEntry[] = runtime.map(([event, payload]) => ({
    imr: 3,
    event_type: DSTACK_RUNTIME_EVENT_TYPE,
    digest: toHex(runtimeEventDigest(event, payload)),
    event,
    event_payload: toHex(payload),
  }));
  const eventLog = [...boot, ...rt];
  const digestsOf = (imr: number): Uint8Array[] => eventLog.filter((e) => e.imr === imr).map((e) => fromHex(e.digest, 'INTERNAL'));
  const rtmrs = [replayRtmr(digestsOf(0)), replayRtmr(digestsOf(1)), replayRtmr(digestsOf(2)), replayRtmr(digestsOf(3))] as const;
  const mrtd = sha384(utf8(`${DEV_IMAGE_LABEL}: mrtd`));
  // MRCONFIGID v1 = 0x01 ‖ compose_hash ‖ zeros (§3.1).
  const mrConfigId = new Uint8Array(48);
  mrConfigId[0] = 0x01;
  mrConfigId.set(composeHash, 1);
  const mrOwner = new Uint8Array(48);
  const mrOwnerConfig = new Uint8Array(48);
  // mr_aggregated (§3.1): config/owner registers are appended because MRCONFIGID is non-zero.
  const mrAggregated = sha256(concatBytes(mrtd, ...rtmrs, mrConfigId, mrOwner, mrOwnerConfig));
  const vmConfig = JSON.stringify({
    spec_version: 1,
    os_image_hash: toHex(p.osImageHash),
    cpu_count: 2,
    memory_size: 2147483648,
    qemu_single_pass_add_pages: false,
    pic: false,
    pci_hole64_size: 0,
    num_gpus: 0,
    num_nvswitches: 0,
    hugepages: false,
    hotplug_off: true,
  });
  return {
    appId: Uint8Array.from(p.appId),
    instanceId: Uint8Array.from(p.instanceId),
    appCompose: p.appCompose,
    appName: appNameOf(p.appCompose),
    composeHash,
    osImageHash: Uint8Array.from(p.osImageHash),
    deviceId: sha256(p.ppid),
    keyProviderInfo,
    mrtd,
    rtmrs,
    mrConfigId,
    mrOwner,
    mrOwnerConfig,
    mrAggregated,
    eventLog,
    vmConfig,
  };
}

/** Info `tcb_info` (§1.2, `rpc_service.rs` L209-L272): measurements, event log and app-compose. */
export function tcbInfoJson(p: SimulatedPlatform): string {
  return JSON.stringify({
    mrtd: toHex(p.mrtd),
    rtmr0: toHex(p.rtmrs[0]),
    rtmr1: toHex(p.rtmrs[1]),
    rtmr2: toHex(p.rtmrs[2]),
    rtmr3: toHex(p.rtmrs[3]),
    mr_aggregated: toHex(p.mrAggregated),
    os_image_hash: toHex(p.osImageHash),
    compose_hash: toHex(p.composeHash),
    device_id: toHex(p.deviceId),
    event_log: p.eventLog,
    app_compose: p.appCompose,
  });
}
