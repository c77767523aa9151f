// Tests whether the pieces of $admin behave on their own: client ids as one topic level (the broker and the CLI
// agree), request topics, paging, the reserved node ids, and config.get's redaction of every secret.
import { describe, it, expect } from 'vitest'
import { encodeClientId, parseRequestTopic, responseTopic, isResponseTopic } from '../../broker/src/admin/topics.js'
import { encodeClientId as cliEncode } from '../../client/src/admin/request.js'
import { page } from '../../broker/src/admin/commands/page.js'
import { redactConfig } from '../../broker/src/admin/commands/config-get.js'
import { resolveConfig } from '../../broker/src/config.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'

describe('$admin pieces', () => {
  it('writes a client id as one topic level, the same in the broker and the CLI', () => {
    const ids = ['mqttjs_1a2b', 'ops/1', 'a+b#c', 'x*y?[z]\\', 'café 1', "it's(1)!", '%41', '']
    for (const id of ids) {
      const level = encodeClientId(id)
      expect(level).toMatch(/^[A-Za-z0-9\-._~%]*$/)
      expect(decodeURIComponent(level)).toBe(id)
      expect(cliEncode(id)).toBe(level)
    }
    expect(encodeClientId('mqttjs_1a2b')).toBe('mqttjs_1a2b')
    expect(responseTopic('ops/1', 'r1')).toBe('$admin/response/ops%2F1/r1')
    expect(responseTopic('ops')).toBe('$admin/response/ops')
  })

  it('reads request topics and says what is wrong with others', () => {
    expect(parseRequestTopic('$admin/all/node.stats')).toEqual({ target: 'all', command: 'node.stats' })
    expect(parseRequestTopic('$admin/node-1/clients.list')).toEqual({ target: 'node-1', command: 'clients.list' })
    for (const bad of ['$admin', '$admin/all', '$admin/all/x/y', '$admin//x', '$admin/all/']) {
      expect(parseRequestTopic(bad)).toEqual({ error: expect.stringContaining('is not a request topic') })
    }
    expect([isResponseTopic('$admin/response/x/1'), isResponseTopic('$admin/response'), isResponseTopic('$admin/responses/x')]).toEqual([true, true, false])
  })

  it('pages by key', () => {
    const items = ['d', 'a', 'c', 'b', 'e'].map((k) => ({ k }))
    const keys = (p: { items: Array<{ k: string }> }): string[] => p.items.map((i) => i.k)
    const p1 = page([...items], (i) => i.k, 2, undefined)
    expect([keys(p1), p1.next, p1.total]).toEqual([['a', 'b'], 'b', 5])
    const p3 = page([...items], (i) => i.k, 2, 'd')
    expect([keys(p3), p3.next]).toEqual([['e'], null])
    expect(page([...items], (i) => i.k, 2, 'zz')).toEqual({ total: 5, items: [], next: null })
    expect(page([...items], (i) => i.k, 5, undefined).next).toBeNull()
  })

  it('refuses the node ids all and response', () => {
    expect(() => resolveConfig({ nodeId: 'all' })).toThrow(/nodeId: all and response are reserved/)
    expect(() => resolveConfig({ nodeId: 'response' })).toThrow(/reserved/)
    expect(resolveConfig({ nodeId: 'all-0' }).nodeId).toBe('all-0')
  })

  it('removes every secret from config.get', () => {
    const config = resolveConfig({ ...secureConfig(), redis: 'redis://default:s3cret-pw@10.0.0.5:6379/2' })
    const shown = redactConfig(config) as any
    const text = JSON.stringify(shown)
    for (const secret of ['s3cret-pw', SAMPLE.hs256, ...config.auth!.users.map((u) => u.password), ...config.auth!.apiKeys.map((k) => k.sha256)]) {
      expect(text).not.toContain(secret)
    }
    expect(shown.redis).toBe('redis://default:(redacted)@10.0.0.5:6379/2')
    expect(shown.auth.users.map((u: any) => u.username)).toEqual(['scores-svc', 'ops'])
    expect(shown.auth.jwt.issuer).toBe(SAMPLE.issuer)
    expect(config.auth!.jwt!.secrets).toEqual([SAMPLE.hs256]) // the node's own config is untouched
  })
})
