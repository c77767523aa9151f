// The `debug` package, silent: MQTT.js and its parser log through it (some call `require('debug')(name)` directly,
// hence CommonJS), and a page has no DEBUG variable to turn it on.
function createDebug () {
  const log = () => {}
  log.enabled = false
  log.extend = createDebug
  return log
}
module.exports = createDebug
