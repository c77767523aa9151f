/**
 * mqtt-packet 9's parser (one per aedes client) keeps unparsed input in `bl()`, a BufferListStream: a full Duplex
 * stream with its own buffers and event listeners, though the parser only appends, reads and consumes bytes. Here
 * it gets bl's plain BufferList (the same methods, no stream), which saves each connection about 1 KB of heap.
 * Applied once, to the Parser class that aedes and this process share; `leanParserApplied` tells whether it took.
 *
 * The parser also keeps only two fields of a CONNECT, not the packet, and refuses strings that are not well-formed
 * UTF-8 (below).
 *
 * And: mqtt-packet's writer caches a 2-byte Buffer for every number from 0 to 65535 (packet identifiers and
 * lengths, MQTT 3.1.1 section 1.5.2) the first time it encodes a packet. That is 65,536 objects, about 6 MB of heap
 * that every full garbage collection marks, to save one 2-byte allocation per encoded packet identifier; Tribune
 * encodes a PUBLISH once per message, not per subscriber (delivery.ts), so the cache is turned off.
 */
import { createRequire } from 'node:module'
import { isUtf8 } from 'node:buffer'
import mqttPacket from 'mqtt-packet'

const require = createRequire(import.meta.url)
const { BufferList } = require('bl') as { BufferList: new () => unknown }

interface ParserState {
  _list: unknown
  _pos: number
  _parseString: () => string | null
  _emitError: (err: Error) => void
  _resetState: () => void
  _parseConnect: () => unknown
  settings: { protocolVersion?: number, bridgeMode?: boolean }
}

const proto = Object.getPrototypeOf(mqttPacket.parser()) as ParserState
const original = proto._resetState

/** True when mqtt-packet's parser has the shape this patch expects (mqtt-packet 9) and uses a plain BufferList. */
export let leanParserApplied = false
/** True when the parser keeps only the protocol version and bridge mode of a CONNECT, not the packet. */
export let connectNotKeptApplied = false

mqttPacket.writeToStream.cacheNumbers = false

if (typeof original === 'function' && typeof BufferList === 'function') {
  proto._resetState = function resetState (this: ParserState): void {
    original.call(this)
    this._list = new BufferList()
  }
  leanParserApplied = true
}

// The parser keeps the CONNECT packet it parsed as its `settings` for the connection's life, for two fields it reads
// later (the protocol version and bridge mode, MQTT 3.1.1 section 3.1.2.2): with it the client id, will and password.
// It keeps just those two here: about 250 bytes less per connection, and no credentials held by the parser.
const parseConnect = proto._parseConnect
if (typeof parseConnect === 'function') {
  proto._parseConnect = function parseConnectLean (this: ParserState): unknown {
    const packet = parseConnect.call(this)
    const { settings } = this
    if (packet !== undefined && settings === packet) this.settings = { protocolVersion: settings.protocolVersion, bridgeMode: settings.bridgeMode }
    return packet
  }
  connectNotKeptApplied = true
}

/** True when the parser refuses ill-formed UTF-8 in its strings. */
export let utf8CheckApplied = false

// MQTT 3.1.1 section 1.5.3: the strings of a packet (topic names and filters, client id, will topic, user name) must
// be well-formed UTF-8, and a server that receives ill-formed UTF-8 must close the connection [MQTT-1.5.3-1].
// mqtt-packet decodes them with Buffer.toString, which turns ill-formed bytes into U+FFFD silently: a topic name sent
// as bytes C3 28 would be published as "\uFFFD(". Here such a string is a parse error, which closes the connection.
// Only a string that decoded to U+FFFD is looked at again (the character itself, EF BF BD, is well-formed).
const parseString = proto._parseString
if (typeof parseString === 'function') {
  proto._parseString = function parseWellFormedString (this: ParserState & { _list: { slice: (start: number, end: number) => Buffer } }): string | null {
    const start = this._pos + 2 // after the string's 2-byte length (section 1.5.3)
    const result = parseString.call(this)
    if (result !== null && result.includes('\uFFFD') && !isUtf8(this._list.slice(start, this._pos))) {
      this._emitError(new Error('a string in the packet is not well-formed UTF-8 [MQTT-1.5.3-1]'))
      return null
    }
    return result
  }
  utf8CheckApplied = true
}

