/**
 * JWT verification with `jose`: HS256 secrets, RS256/ES256 public keys (PEM) and a JWKS file, with `exp`, `nbf`,
 * `iss` and `aud` checked (RFC 7519 section 4.1). Several keys may be configured at once, for rotation.
 */
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, importSPKI, jwtVerify, decodeProtectedHeader, type JWTPayload, type CryptoKey, type KeyObject, type JSONWebKeySet } from 'jose'

export interface JwtSettings {
  secrets: readonly string[]
  publicKeyFiles: readonly string[]
  jwksFile?: string
  issuer?: string | string[]
  audience?: string | string[]
}

type Key = CryptoKey | KeyObject | Uint8Array

/** A verifier built from settings; keys are read once, when the config is (re)loaded. */
export interface JwtVerifier {
  /**
   * Verifies a compact JWS token.
   * @returns its claims
   * @throws Error saying why (expired, not yet valid, bad signature, wrong issuer or audience, malformed)
   */
  verify: (token: string) => Promise<JWTPayload>
}

const ALGS_FOR_KEYS = ['RS256', 'ES256']

/**
 * Reads the keys named in `settings`.
 * @throws Error naming the file that cannot be read or parsed
 */
export async function createJwtVerifier (settings: JwtSettings): Promise<JwtVerifier> {
  const hmac: Uint8Array[] = settings.secrets.map((s) => new TextEncoder().encode(s))
  const publicKeys: Array<{ alg: string, key: Key }> = []
  for (const file of settings.publicKeyFiles) {
    const pem = readKeyFile(file)
    let done = false
    for (const alg of ALGS_FOR_KEYS) {
      try {
        publicKeys.push({ alg, key: await importSPKI(pem, alg) })
        done = true
        break
      } catch {}
    }
    if (!done) throw new Error(`auth.jwt.publicKeyFiles: ${file} is not an RSA or P-256 public key in PEM (SPKI)`)
  }
  let jwks: ReturnType<typeof createLocalJWKSet> | null = null
  if (settings.jwksFile !== undefined) {
    try {
      jwks = createLocalJWKSet(JSON.parse(readKeyFile(settings.jwksFile)) as JSONWebKeySet)
    } catch (err) {
      throw new Error(`auth.jwt.jwksFile: ${settings.jwksFile}: ${(err as Error).message}`)
    }
  }
  // Every token must expire (RFC 7519 section 4.1.4): one without `exp` is refused.
  const options = { issuer: settings.issuer, audience: settings.audience, clockTolerance: 5, requiredClaims: ['exp'] }
  return {
    async verify (token: string): Promise<JWTPayload> {
      let alg: string | undefined
      try {
        alg = decodeProtectedHeader(token).alg
      } catch {
        throw new Error('malformed token')
      }
      let lastError: Error = new Error(`no key configured for alg ${String(alg)}`)
      const tryKey = async (key: Key | ReturnType<typeof createLocalJWKSet>, algorithms: string[]): Promise<JWTPayload | null> => {
        try {
          return (await jwtVerify(token, key as Key, { ...options, algorithms })).payload
        } catch (err) {
          lastError = err as Error
          return null
        }
      }
      if (alg === 'HS256') {
        for (const key of hmac) {
          const claims = await tryKey(key, ['HS256'])
          if (claims !== null) return claims
        }
      } else if (alg === 'RS256' || alg === 'ES256') {
        for (const k of publicKeys) {
          if (k.alg !== alg) continue
          const claims = await tryKey(k.key, [alg])
          if (claims !== null) return claims
        }
        if (jwks !== null) {
          const claims = await tryKey(jwks, [alg])
          if (claims !== null) return claims
        }
      }
      throw lastError
    }
  }
}

function readKeyFile (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new Error(`cannot read key file ${file}: ${(err as Error).message}`)
  }
}
