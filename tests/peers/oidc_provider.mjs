// A real OpenID Provider for the test suite: panva's oidc-provider (a
// certified implementation) on 127.0.0.1, with its development login
// pages, which accept any login name without a password check.
//
//   node oidc_provider.mjs PORT REDIRECT_URI CLIENT_SECRET
//
// One confidential client, `secureai`, with the given redirect URI and
// secret; PKCE required. The login name typed on the login page becomes the
// account: its `sub` and its `email`; the email counts as verified unless
// the name starts with `unverified`. Consent is granted automatically.
// Prints READY when it listens.

import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = process.argv.slice(2);
if (!port || !redirectUri || !clientSecret) {
  console.error('usage: node oidc_provider.mjs PORT REDIRECT_URI CLIENT_SECRET');
  process.exit(2);
}

const configuration = {
  clients: [
    {
      client_id: 'secureai',
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the claims asked for by scope into the ID token too.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['secureai-test-peer-cookie-key'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: id,
          email_verified: !id.startsWith('unverified'),
          name: `Test ${id.split('@')[0]}`,
        };
      },
    };
  },
  // Grant what the client asks for without a consent page.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    grant.addOIDCClaims(['email', 'email_verified', 'name']);
    await grant.save();
    return grant;
  },
};

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(Number(port), '127.0.0.1', () => {
  console.log('READY');
});
