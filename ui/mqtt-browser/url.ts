// `url.parse(href, true)` as MQTT.js's connect() reads it (protocol, hostname, port, path, query, auth), on the
// browser's own URL class: in place of the copy of Node's url module (with punycode, about 72 KB) in MQTT.js's bundle.

/** The fields of Node's legacy `url.parse` result that MQTT.js reads. */
export interface ParsedUrl {
  protocol: string
  hostname: string
  port: string | null
  path: string
  pathname: string
  query: Record<string, string>
  auth: string | null
  href: string
}

/** Parses an absolute URL (`ws://user:pw@host:8080/mqtt?x=1`). @throws TypeError for a URL that is not absolute */
export function parse (href: string): ParsedUrl {
  const u = new URL(href)
  const auth = u.username === '' ? null : `${decodeURIComponent(u.username)}${u.password === '' ? '' : `:${decodeURIComponent(u.password)}`}`
  return {
    protocol: u.protocol,
    hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? null : u.port,
    path: `${u.pathname}${u.search}`,
    pathname: u.pathname,
    query: Object.fromEntries(u.searchParams),
    auth,
    href: u.href
  }
}

export default { parse }
