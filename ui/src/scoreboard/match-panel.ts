// The selected match: its header (teams, score, status) and its event feed, newest first, with the feed position.
import { h } from '../shared/dom.js'
import { eventLine } from './events.js'
import { parseMatchEvent, scoreText, statusLine, type MatchEvent, type MatchState } from './matches.js'

/** A feed message as the panel keeps it: the envelope's seq and the event. */
interface Item {
  seq: number
  event: MatchEvent
  li: HTMLLIElement
}

/** The panel in `root`. */
export class MatchPanel {
  readonly #root: HTMLElement
  readonly #head: HTMLElement
  readonly #position: HTMLElement
  readonly #list: HTMLOListElement
  #items: Item[] = []
  #teams: [string, string] = ['', '']
  #teamsKnown = false

  constructor (root: HTMLElement) {
    this.#root = root
    this.#head = h('div', { class: 'match-head' })
    this.#position = h('p', { id: 'position', class: 'position' })
    this.#list = h('ol', { id: 'feed', class: 'feed', reversed: true })
  }

  /** Shows match `id` (state when known), with an empty feed. */
  open (id: string, state: MatchState | undefined): void {
    this.#items = []
    this.#teamsKnown = false
    this.#list.replaceChildren()
    this.#position.textContent = ''
    this.#root.dataset.match = id
    this.#root.replaceChildren(this.#head, this.#position, this.#list)
    this.setState(state, undefined)
  }

  /** Nothing selected. */
  close (): void {
    delete this.#root.dataset.match
    this.#root.replaceChildren(h('p', { class: 'hint' }, 'Pick a match to follow its events.'))
  }

  /** The match's state changed (or became known): header, and the feed's team names once known. */
  setState (state: MatchState | undefined, last: MatchEvent | undefined): void {
    if (state === undefined) {
      this.#head.replaceChildren(h('h2', {}, this.#root.dataset.match ?? ''))
      return
    }
    const status = statusLine(state, last)
    this.#head.replaceChildren(
      h('h2', {}, h('span', { class: 'team' }, state.team1), h('span', { class: 'score', 'data-status': state.status }, state.status === 'scheduled' ? 'v' : scoreText(state.score)), h('span', { class: 'team' }, state.team2)),
      h('p', { class: `status ${status.kind}` }, status.text),
      h('p', { class: 'meta' }, [state.round, state.group, state.ground].filter((x) => x !== undefined).join(' · ')))
    if (!this.#teamsKnown) {
      this.#teams = [state.team1, state.team2]
      this.#teamsKnown = true
      // Lines rendered before the names were known name the side now (the same elements, filled again).
      for (const item of this.#items) item.li.replaceChildren(...this.#cells(item.event))
    }
  }

  /** An envelope of the feed (in seq order, once each: the client library's guarantee). */
  add (seq: number, data: unknown): MatchEvent | null {
    const event = parseMatchEvent(data)
    if (event === null) return null
    const li = h('li', { class: `event ${event.type}`, 'data-seq': seq, 'data-id': event.id, 'data-type': event.type }, ...this.#cells(event))
    this.#items.push({ seq, event, li })
    this.#list.prepend(li)
    return event
  }

  /** The feed's history restarted (a reset notice): what was shown belongs to the old history. */
  restart (why: string): void {
    this.#items = []
    this.#list.replaceChildren(h('li', { class: 'notice' }, `History restarted (${why})`))
  }

  /** Shows the feed position and the subscription's state. */
  setPosition (position: { seq: number, epoch: string } | undefined, state: string): void {
    this.#position.textContent = position === undefined
      ? `Feed: ${state}, nothing yet`
      : `Feed: ${state} · seq ${position.seq} · epoch ${position.epoch}`
    this.#position.dataset.seq = String(position?.seq ?? 0)
    this.#position.dataset.state = state
  }

  #cells (event: MatchEvent): HTMLElement[] {
    const line = eventLine(event, this.#teams)
    return [
      h('span', { class: 'minute' }, line.minute),
      h('span', { class: 'icon', 'aria-hidden': 'true' }, line.icon),
      h('span', { class: 'text' }, line.text, ...line.marks.map((m) => h('em', { class: 'mark' }, m))),
      h('span', { class: 'after' }, line.score)
    ]
  }
}
