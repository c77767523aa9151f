/**
 * mqtt-packet 9's parser (one per aedes client) keeps unparsed input in `bl()`, a BufferListStream: a full Duplex
 * stream with its own buffers and event listeners, though the parser only appends, reads and consumes bytes. Here
 * it gets bl's plain BufferList (the same methods, no stream), which saves each connection about 1 KB of heap.
 * Applied once, to the Parser class that aedes and this process share; `leanParserApplied` tells whether it took.
 */
import { createRequire } from 'node:module'
import mqttPacket from 'mqtt-packet'

const require = createRequire(import.meta.url)
const { BufferList } = require('bl') as { BufferList: new () => unknown }

interface ParserState { _list: unknown, _resetState: () => void }

const proto = Object.getPrototypeOf(mqttPacket.parser()) as ParserState
const original = proto._resetState

/** True when mqtt-packet's parser has the shape this patch expects (mqtt-packet 9) and uses a plain BufferList. */
export let leanParserApplied = false

if (typeof original === 'function' && typeof BufferList === 'function') {
  proto._resetState = function resetState (this: ParserState): void {
    original.call(this)
    this._list = new BufferList()
  }
  leanParserApplied = true
}
