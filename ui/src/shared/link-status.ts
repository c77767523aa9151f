// The connection state a page shows: connecting, live, reconnecting, caught up (after a gap or a reconnect), refused.
// One owner of the state (`set`), written to the element as `data-state` and as words.

/** What a page's link to the broker is doing. */
export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'caught-up' | 'refused'

/** How long "caught up" stays shown before the badge says "live" again, ms. */
const CAUGHT_UP_MS = 6000

/** The connection badge of a page: one element, its `data-state` and text, and `title` for details. */
export class LinkStatus {
  readonly #el: HTMLElement
  #state: LinkState = 'connecting'
  #timer: ReturnType<typeof setTimeout> | undefined
  /** When the link was lost (ms since 1970), until it is live again. */
  #awaySince: number | undefined

  constructor (el: HTMLElement) {
    this.#el = el
    this.#render('connecting', 'Connecting…', '')
  }

  get state (): LinkState {
    return this.#state
  }

  /** True between a loss of the link and the moment the page has caught up. */
  get away (): boolean {
    return this.#awaySince !== undefined
  }

  /** Connecting for the first time (or again after new credentials). */
  connecting (): void {
    this.#awaySince = undefined
    this.#render('connecting', 'Connecting…', '')
  }

  /**
   * The link was lost, a retry is scheduled (`attempt`, `delayMs`, `url` when known), or a feed is resubscribing
   * (`note`: why, e.g. a gap).
   */
  reconnecting (info: { attempt?: number, delayMs?: number, url?: string, note?: string } = {}): void {
    this.#awaySince ??= Date.now()
    const when = info.delayMs === undefined ? '' : `, retrying in ${(info.delayMs / 1000).toFixed(1)} s`
    const attempt = info.attempt === undefined ? '' : ` (attempt ${info.attempt}${when})`
    const note = info.note === undefined ? '' : ` (${info.note})`
    this.#render('reconnecting', `Reconnecting${attempt}${note}…`, info.url ?? '')
  }

  /**
   * Live again after a loss: shown as "caught up" for a few seconds (with what was resumed, e.g. "from seq 41"),
   * then "live". Without a loss before, simply live.
   */
  caughtUp (detail: string): void {
    const since = this.#awaySince
    this.#awaySince = undefined
    if (since === undefined) {
      this.live()
      return
    }
    const away = ((Date.now() - since) / 1000).toFixed(1)
    this.#render('caught-up', `Caught up after ${away} s away${detail === '' ? '' : `: ${detail}`}`, '')
    this.#timer = setTimeout(() => { if (this.#state === 'caught-up') this.live() }, CAUGHT_UP_MS)
  }

  /** Connected, nothing pending. */
  live (detail = ''): void {
    this.#render('live', 'Live', detail)
  }

  /** Refused for good (bad credentials, not authorized): the page asks for others. */
  refused (text: string): void {
    this.#awaySince = undefined
    this.#render('refused', text, '')
  }

  #render (state: LinkState, text: string, title: string): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#state = state
    this.#el.dataset.state = state
    this.#el.textContent = text
    this.#el.title = title
  }
}
