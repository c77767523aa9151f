// The npm `process` polyfill ships no types: what prelude.ts takes from it.
declare module 'process/browser.js' {
  const process: { nextTick: (callback: (...args: unknown[]) => void, ...args: unknown[]) => void, env: Record<string, string> }
  export default process
}
