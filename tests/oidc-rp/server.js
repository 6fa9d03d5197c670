// A relying party for Doorman's tests: express-openid-connect (openid-client underneath)
// signs people in with the authorization code flow and PKCE; the id token is checked
// again with the independent `jose` library against the provider's JWKS.
//
// Configured by the environment:
//   OIDC_ISSUER         the provider's issuer (Doorman's server.public_url)
//   OIDC_CLIENT_ID      the client id
//   OIDC_CLIENT_SECRET  the client secret (express-openid-connect has no public code-flow clients)
//   OIDC_CLIENT_AUTH    client_secret_basic (default) or client_secret_post
//   OIDC_ID_TOKEN_ALG   the id token's algorithm (default ES256)
//   OIDC_SCOPE          the scopes asked for (default "openid profile email groups offline_access")
//   RP_HOST             the address to listen on and to name in URLs (default 127.0.0.1)
//   RP_PORT             the port (default 0: any free one)
// Once listening it prints one line, `listening <port>`, and the redirect URI is
// http://RP_HOST:<port>/callback, the back-channel logout URI .../backchannel-logout.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const { auth } = require('express-openid-connect');
// jose 5 under another name: the name `jose` stays with the one copy of jose 2 that
// express-openid-connect and openid-client share (two copies break its logout-token check).
const jose = require('jose-current');

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      console.error(`missing environment variable ${name}`);
      process.exit(2);
    }
    return fallback;
  }
  return value;
}

const issuer = env('OIDC_ISSUER');
const clientID = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const clientAuthMethod = env('OIDC_CLIENT_AUTH', 'client_secret_basic');
const idTokenSigningAlg = env('OIDC_ID_TOKEN_ALG', 'ES256');
const scope = env('OIDC_SCOPE', 'openid profile email groups offline_access');
const host = env('RP_HOST', '127.0.0.1');
const port = Number(env('RP_PORT', '0'));

// Where back-channel logout tokens are remembered until the session they name is seen.
class MemoryStore {
  constructor() {
    this.entries = new Map();
  }
  async get(key) {
    return this.entries.get(key);
  }
  async set(key, value) {
    this.entries.set(key, value);
  }
  async destroy(key) {
    this.entries.delete(key);
  }
}

/** A short fingerprint of a secret, so answers can say whether it changed without showing it. */
function fingerprint(value) {
  if (!value) return null;
  return crypto.createHash('sha256').update(value).digest('hex').slice(0, 16);
}

/** Wraps an async handler: a failure answers JSON with the status the provider gave. */
function handle(fn) {
  return (req, res) => {
    fn(req, res).catch((err) => {
      const status = err.status || (err.response && (err.response.statusCode || err.response.status));
      res.status(typeof status === 'number' && status >= 400 ? status : 502).json({
        error: err.error || err.code || err.name || 'error',
        error_description: err.error_description || err.message,
      });
    });
  };
}

const logoutStore = new MemoryStore();
let jwks;

function start(listener) {
  const baseURL = `http://${host}:${listener.address().port}`;
  const app = express();
  app.use(
    auth({
      issuerBaseURL: issuer,
      baseURL,
      clientID,
      clientSecret,
      clientAuthMethod,
      idTokenSigningAlg,
      secret: crypto.randomBytes(32).toString('hex'),
      authRequired: false,
      idpLogout: true,
      authorizationParams: { response_type: 'code', scope },
      backchannelLogout: { store: logoutStore },
    }),
  );

  const signedIn = (req, res, next) => {
    if (!req.oidc.isAuthenticated()) {
      return res.oidc.login({ returnTo: req.originalUrl });
    }
    next();
  };

  // The user's claims from the id token.
  app.get('/', signedIn, (req, res) => {
    res.json({ claims: req.oidc.idTokenClaims });
  });

  // A refresh through openid-client: what it changed.
  app.get(
    '/tokens',
    signedIn,
    handle(async (req, res) => {
      const before = {
        access_token: fingerprint(req.oidc.accessToken?.access_token),
        refresh_token: fingerprint(req.oidc.refreshToken),
        id_token: fingerprint(req.oidc.idToken),
      };
      const refreshed = await req.oidc.accessToken.refresh();
      const after = {
        access_token: fingerprint(refreshed.access_token),
        refresh_token: fingerprint(req.oidc.refreshToken),
        id_token: fingerprint(req.oidc.idToken),
      };
      res.json({
        changed: {
          access_token: before.access_token !== after.access_token,
          refresh_token: before.refresh_token !== after.refresh_token,
          id_token: before.id_token !== after.id_token,
        },
        expires_in: refreshed.expires_in,
        claims: req.oidc.idTokenClaims,
      });
    }),
  );

  // The provider's userinfo endpoint, called with the access token.
  app.get(
    '/userinfo',
    signedIn,
    handle(async (req, res) => {
      res.json(await req.oidc.fetchUserInfo());
    }),
  );

  // The id token checked by `jose` alone: signature against the JWKS, issuer, audience.
  app.get(
    '/verify',
    signedIn,
    handle(async (req, res) => {
      if (!jwks) {
        const meta = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
        if (!meta.ok) throw Object.assign(new Error(`discovery answered ${meta.status}`), { status: 502 });
        jwks = jose.createRemoteJWKSet(new URL((await meta.json()).jwks_uri));
      }
      try {
        const { payload, protectedHeader } = await jose.jwtVerify(req.oidc.idToken, jwks, {
          issuer,
          audience: clientID,
        });
        res.json({ header: protectedHeader, claims: payload });
      } catch (err) {
        res.status(422).json({ error: err.code || err.name, error_description: err.message });
      }
    }),
  );

  listener.on('request', app);
  console.log(`listening ${listener.address().port}`);
}

const server = require('node:http').createServer();
server.on('error', (err) => {
  console.error(`cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(3);
});
server.listen(port, host, () => start(server));
