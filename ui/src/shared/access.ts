// Where the pages connect and with what credentials, from the page's address: `?broker=` (one or more WebSocket URLs,
// comma-separated: the nodes of a cluster), else the broker that served the page at the WebSocket path it announces
// in `<meta name="tribune-ws-path">`; credentials from `?apikey=` / `?token=` (taken out of the address bar and kept
// for the tab in sessionStorage) or from a form.

/** Credentials a page presents in its CONNECT (README "Auth": user name `apikey` or `jwt`, the secret as password). */
export interface Credentials {
  readonly username: string
  readonly password: string
}

/** Placeholder the broker replaces with the listener's WebSocket path when it serves a page (ui/README.md). */
const WS_PATH_PLACEHOLDER = '__TRIBUNE_WS_PATH__'

/**
 * The broker WebSocket URLs the page connects to: those of `?broker=` (comma-separated), else
 * `ws(s)://<this page's host><ws path>`. A `?broker=` URL must be on the host name that served the page (any port):
 * the page sends its credentials (an API key, a token, the operator's password) to what it connects to, and a link
 * naming another host would hand them to it.
 * @throws Error naming a `?broker=` entry that is not a ws:// or wss:// URL, or not on this page's host
 */
export function brokerUrls (location: Location, doc: Document): string[] {
  const given = new URLSearchParams(location.search).get('broker')
  const urls = (given ?? '').split(',').map((u) => u.trim()).filter((u) => u !== '')
  if (urls.length > 0) {
    for (const u of urls) {
      let url: URL
      try {
        url = new URL(u)
      } catch {
        throw new Error(`?broker=: ${u} is not a ws:// or wss:// URL`)
      }
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`?broker=: ${u} is not a ws:// or wss:// URL`)
      if (url.hostname !== location.hostname) {
        throw new Error(`?broker=: ${u} is not on this page's host (${location.hostname}); the page connects, with its credentials, only to the host that served it`)
      }
    }
    return urls
  }
  const meta = doc.querySelector<HTMLMetaElement>('meta[name="tribune-ws-path"]')?.content ?? ''
  const path = meta === '' || meta === WS_PATH_PLACEHOLDER ? '/mqtt' : meta
  return [`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`]
}

/**
 * A viewer's credentials given in the address (`?apikey=KEY` or `?token=JWT`): returned, stored for the tab (a reload
 * keeps them) and removed from the address bar, so the secret is not left in the history or a shared link. Without
 * them, those stored earlier in this tab, or null (anonymous).
 */
export function takeViewerCredentials (storageKey: string): Credentials | null {
  const url = new URL(window.location.href)
  const apikey = url.searchParams.get('apikey')
  const token = url.searchParams.get('token')
  let creds: Credentials | null = null
  if (apikey !== null && apikey !== '') creds = { username: 'apikey', password: apikey }
  else if (token !== null && token !== '') creds = { username: 'jwt', password: token }
  if (creds !== null) {
    url.searchParams.delete('apikey')
    url.searchParams.delete('token')
    window.history.replaceState(null, '', url)
    storeCredentials(storageKey, creds)
    return creds
  }
  return storedCredentials(storageKey)
}

/** Credentials kept for this tab under `key`, or null. */
export function storedCredentials (key: string): Credentials | null {
  try {
    const raw = window.sessionStorage.getItem(key)
    if (raw === null) return null
    const parsed = JSON.parse(raw) as Partial<Credentials>
    return typeof parsed.username === 'string' && typeof parsed.password === 'string' ? { username: parsed.username, password: parsed.password } : null
  } catch {
    return null
  }
}

/** Keeps credentials for this tab (null forgets them). Storage refused (private mode): not kept, nothing thrown. */
export function storeCredentials (key: string, creds: Credentials | null): void {
  try {
    if (creds === null) window.sessionStorage.removeItem(key)
    else window.sessionStorage.setItem(key, JSON.stringify(creds))
  } catch {
    // the page still works; a reload asks again
  }
}

/**
 * The CONNACK return code of a refused CONNECT as MQTT.js reports it (an error with `code` 1 to 5, MQTT 3.1.1 section
 * 3.2.2.3), or undefined for any other error.
 */
export function connackCode (err: Error): number | undefined {
  const code = (err as { code?: unknown }).code
  return typeof code === 'number' && code >= 1 && code <= 5 ? code : undefined
}

/** What a refused CONNECT means to the person at the page. */
export function refusalText (code: number): string {
  switch (code) {
    case 4: return 'the broker did not accept these credentials (unknown, revoked or expired)'
    case 5: return 'not authorized here: this broker\'s WebSocket listener does not take this kind of sign-in'
    case 3: return 'the broker is busy; retrying'
    default: return `the broker refused the connection (CONNACK ${code})`
  }
}
