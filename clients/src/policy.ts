// Attestation policy files: the parser lives in the verifier package (the appliance uses it too).
export { PolicyError, parsePolicy, type PolicyWithoutNonce } from '@openkey/verifier';
