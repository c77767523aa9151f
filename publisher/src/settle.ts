// Settling a publish's promise once, whichever comes first: its acknowledgement, its failure, or close().

/**
 * A callback that settles a promise once: called without an argument it resolves, with an Error it rejects; later
 * calls do nothing. It is held in `pending` until then, so that close() can settle every unfinished one with an error.
 * @param pending the owner's set of unsettled callbacks (the callback adds itself, and leaves once called)
 * @returns the callback
 */
export function settleOnce (pending: Set<(err: Error) => void>, resolve: () => void, reject: (err: Error) => void): (err?: Error) => void {
  let settled = false
  const settle = (err?: Error): void => {
    if (settled) return
    settled = true
    pending.delete(settle)
    if (err === undefined) resolve()
    else reject(err)
  }
  pending.add(settle)
  return settle
}
