// Node's `process` and `Buffer` as globals, which MQTT.js reads without importing them (`typeof process?.nextTick`
// throws where no `process` is declared); imported by each page before the client library.
import process from 'process/browser.js'
import { Buffer } from 'buffer'

const g = globalThis as { process?: unknown, Buffer?: unknown }
g.process ??= process
g.Buffer ??= Buffer
