// What a page never loads: MQTT.js's TCP, TLS, SOCKS, WeChat and Alipay transports, and the `ws` package (a page
// uses the browser's WebSocket).
export default {}
