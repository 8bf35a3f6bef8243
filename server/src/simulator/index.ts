// Public surface of the dev dstack guest-agent simulator (DEV ONLY). Import from here, not from the
// individual modules: startSimulator for a running server, buildSimulatorState for in-process use,
// and the mock-attestation types for clients that fetch dev collateral.

export {
  startSimulator,
  buildSimulatorState,
  DEV_DEFAULT_SEED,
  DEV_KEY_PROVIDER_NAME,
  DEV_APP_COMPOSE,
  SIMULATED_AGENT_VERSION,
  type SimulatorOptions,
  type SimulatorIdentityOptions,
  type SimulatorState,
  type RunningSimulator,
} from './simulator.ts';
export { createMockAttestation, type DevQuoteCollateral, type MockAttestation, type TdMeasurements } from './mock-attestation.ts';
export { runtimeEventDigest, replayRtmr, type EventLogEntry } from './platform.ts';
