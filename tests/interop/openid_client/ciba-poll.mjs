// One CIBA poll flow with openid-client 6 against Backchannel, approved through the
// automated approval hook while the library polls. Prints one JSON object.
//
//   ISSUER=http://127.0.0.1:PORT CLIENT_ID=... CLIENT_SECRET=... LOGIN_HINT=... node ciba-poll.mjs

import * as client from 'openid-client';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, LOGIN_HINT } = process.env;
const url = new URL(ISSUER);
const config = await client.discovery(
  url,
  CLIENT_ID,
  undefined,
  client.ClientSecretBasic(CLIENT_SECRET),
  url.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
);
// verify the id_token signature against the JWKS too
client.enableNonRepudiationChecks(config);

const started = await client.initiateBackchannelAuthentication(config, {
  scope: 'openid profile',
  login_hint: LOGIN_HINT,
  binding_message: 'openid-client interop',
});

const approval = await fetch(new URL('/test/ciba/approve', ISSUER), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ auth_req_id: started.auth_req_id, action: 'allow' }),
});

const tokens = await client.pollBackchannelAuthenticationGrant(config, started);
console.log(JSON.stringify({
  interval: started.interval,
  expires_in: started.expires_in,
  approval_status: approval.status,
  token_type: tokens.token_type,
  has_refresh_token: typeof tokens.refresh_token === 'string',
  claims: tokens.claims(),
}));
