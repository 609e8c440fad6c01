// The device key, the decision statement (JWS ES256) and WebAuthn value conversions.

const encoder = new TextEncoder();

export function base64url(bytes) {
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  let binary = "";
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(padded + "=".repeat((4 - (padded.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function base64urlJson(value) {
  return base64url(encoder.encode(JSON.stringify(value)));
}

export function randomId(byteCount = 16) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

// A P-256 key pair whose private half can never leave the browser (extractable: false).
export async function generateDeviceKey() {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
}

export async function publicJwk(keyPair) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
  return { kty, crv, x, y };
}

// base64url SHA-256 of the exact UTF-8 bytes of `text`: the content the user saw.
export async function sha256(text) {
  return base64url(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

// A compact JWS. WebCrypto ECDSA signatures are raw r||s, exactly what ES256 needs.
export async function signStatement(privateKey, claims) {
  const header = { alg: "ES256", typ: "backchannel-decision+jwt" };
  const signingInput = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    privateKey,
    encoder.encode(signingInput),
  );
  return `${signingInput}.${base64url(signature)}`;
}

// --- WebAuthn: JSON options (base64url binary fields) to and from the browser's buffers.

function withCredentialIds(list) {
  return (list || []).map((item) => ({ ...item, id: fromBase64url(item.id) }));
}

export function creationOptions(json) {
  const options = json.publicKey || json;
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: withCredentialIds(options.excludeCredentials),
  };
}

export function requestOptions(json) {
  const options = json.publicKey || json;
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    allowCredentials: withCredentialIds(options.allowCredentials),
  };
}

function credentialBase(credential) {
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || null,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

export function registrationJson(credential) {
  const response = credential.response;
  return {
    ...credentialBase(credential),
    response: {
      clientDataJSON: base64url(response.clientDataJSON),
      attestationObject: base64url(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : [],
    },
  };
}

export function assertionJson(credential) {
  const response = credential.response;
  return {
    ...credentialBase(credential),
    response: {
      clientDataJSON: base64url(response.clientDataJSON),
      authenticatorData: base64url(response.authenticatorData),
      signature: base64url(response.signature),
      userHandle: response.userHandle ? base64url(response.userHandle) : null,
    },
  };
}

export async function platformAuthenticatorAvailable() {
  if (!window.PublicKeyCredential) return false;
  try {
    return await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
  } catch {
    return false;
  }
}
