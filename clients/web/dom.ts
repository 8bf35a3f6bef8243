// Types for the few browser APIs the page touches, and typed handles to them. The repository
// type-checks as one Node program (lib ES2023 + node types); the DOM lib would retype fetch, Request
// and friends for the server and the tests too, so the page declares here exactly what it uses:
// elements, location, and the WebAuthn calls (WebAuthn L3 §5). Fetch, WebCrypto, TextEncoder and
// DOMException are typed by the node types, which match the browser for what the page uses.

/** abstract new () => T: enough for `instanceof` to narrow to T. */
type Ctor<T> = abstract new () => T;

export interface Elem {
  textContent: string | null;
  append(...nodes: (Elem | string)[]): void;
  replaceChildren(...nodes: (Elem | string)[]): void;
  setAttribute(name: string, value: string): void;
  addEventListener(type: 'click' | 'change', listener: () => void): void;
}
export interface InputElem extends Elem {
  value: string;
  checked: boolean;
  disabled: boolean;
}
export interface ButtonElem extends Elem {
  disabled: boolean;
}
export interface SelectElem extends Elem {
  value: string;
}
export interface TextAreaElem extends Elem {
  value: string;
}
export interface TableElem extends Elem {
  readonly tBodies: ArrayLike<Elem>;
}

// ---- WebAuthn L3 (§5.4 creation options, §5.5 request options, §5.1 PublicKeyCredential) -------

export interface CredentialDescriptor {
  readonly type: 'public-key';
  readonly id: Uint8Array<ArrayBuffer>;
}
export type UserVerification = 'required' | 'preferred' | 'discouraged';
export type ResidentKey = 'required' | 'preferred' | 'discouraged';

export interface CreationOptions {
  challenge: Uint8Array<ArrayBuffer>;
  rp: { readonly name: string; readonly id?: string };
  user: { readonly id: Uint8Array<ArrayBuffer>; readonly name: string; readonly displayName: string };
  pubKeyCredParams: readonly { readonly type: 'public-key'; readonly alg: number }[];
  excludeCredentials: readonly CredentialDescriptor[];
  attestation: 'none';
  timeout?: number;
  authenticatorSelection?: { readonly residentKey?: ResidentKey; readonly requireResidentKey?: boolean; readonly userVerification?: UserVerification };
  extensions?: { readonly credProps?: boolean };
}

export interface RequestOptions {
  challenge: Uint8Array<ArrayBuffer>;
  allowCredentials: readonly CredentialDescriptor[];
  userVerification: UserVerification;
  rpId?: string;
  timeout?: number;
}

export interface PublicKeyCredentialLike {
  readonly id: string;
  readonly rawId: ArrayBuffer;
  readonly type: string;
  readonly response: unknown;
  readonly authenticatorAttachment: string | null;
  getClientExtensionResults(): unknown;
}
export interface AttestationResponseLike {
  readonly clientDataJSON: ArrayBuffer;
  readonly attestationObject: ArrayBuffer;
  getTransports(): string[];
}
export interface AssertionResponseLike {
  readonly clientDataJSON: ArrayBuffer;
  readonly authenticatorData: ArrayBuffer;
  readonly signature: ArrayBuffer;
  readonly userHandle: ArrayBuffer | null;
}

interface BrowserGlobals {
  readonly document: { getElementById(id: string): unknown; createElement(tag: string): Elem };
  readonly location: { readonly origin: string; readonly hostname: string };
  readonly isSecureContext: boolean;
  readonly navigator: {
    readonly credentials: {
      create(o: { publicKey: CreationOptions }): Promise<unknown>;
      get(o: { publicKey: RequestOptions }): Promise<unknown>;
    };
  };
  /** Absent in browsers without WebAuthn. */
  readonly PublicKeyCredential: Ctor<PublicKeyCredentialLike> | undefined;
  readonly AuthenticatorAttestationResponse: Ctor<AttestationResponseLike>;
  readonly AuthenticatorAssertionResponse: Ctor<AssertionResponseLike>;
  readonly HTMLElement: Ctor<Elem>;
  readonly HTMLInputElement: Ctor<InputElem>;
  readonly HTMLButtonElement: Ctor<ButtonElem>;
  readonly HTMLSelectElement: Ctor<SelectElem>;
  readonly HTMLTextAreaElement: Ctor<TextAreaElem>;
  readonly HTMLTableElement: Ctor<TableElem>;
}

/** The browser's globals, typed as above. The page only ever runs in a browser. */
export const browser = globalThis as unknown as BrowserGlobals;

/** The page element `#id`, which must be of `type` (index.html and this script ship together). */
export function byId<T>(id: string, type: Ctor<T>): T {
  const el = browser.document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`page element #${id} is missing or of the wrong kind`);
  return el;
}

/** A new element with attributes and children; children are elements or text, never markup. */
export function h(tag: string, attrs: Readonly<Record<string, string>> = {}, ...children: (Elem | string)[]): Elem {
  const el = browser.document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A checkbox or radio button (an element whose `checked` the page sets). */
export function input(attrs: Readonly<Record<string, string>>): InputElem {
  const el = h('input', attrs);
  if (!(el instanceof browser.HTMLInputElement)) throw new Error('createElement("input") made no input');
  return el;
}

/** A button (an element the page disables while its action runs). */
export function button(attrs: Readonly<Record<string, string>>, label: string): ButtonElem {
  const el = h('button', attrs, label);
  if (!(el instanceof browser.HTMLButtonElement)) throw new Error('createElement("button") made no button');
  return el;
}
