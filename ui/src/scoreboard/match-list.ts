// The list of every match, grouped by day: built once per new match, each row updated in place on a new state or
// event (a score changes without rebuilding the page).
import { h } from '../shared/dom.js'
import { dayLabel, groupByDay, scoreText, statusLine, type MatchEvent, type MatchState } from './matches.js'

interface Entry {
  state: MatchState
  /** The latest feed event known (from the selected match's feed or a live match's last event). */
  last?: MatchEvent
  row?: HTMLButtonElement
}

/** The match list in `root`; `onSelect(id)` when a row is chosen. */
export class MatchList {
  readonly #root: HTMLElement
  readonly #onSelect: (id: string) => void
  readonly #entries = new Map<string, Entry>()
  #selected: string | null = null
  #rebuild: ReturnType<typeof setTimeout> | undefined

  constructor (root: HTMLElement, onSelect: (id: string) => void) {
    this.#root = root
    this.#onSelect = onSelect
  }

  /** Every match known, by id. */
  get states (): ReadonlyMap<string, MatchState> {
    return new Map([...this.#entries].map(([id, e]) => [id, e.state]))
  }

  /** The match's state, if known. */
  state (id: string): MatchState | undefined {
    return this.#entries.get(id)?.state
  }

  /** The latest event known of a match. */
  last (id: string): MatchEvent | undefined {
    return this.#entries.get(id)?.last
  }

  /** A retained state arrived: the row is updated, or the list rebuilt (soon, once for a burst) for a new match. */
  setState (state: MatchState): void {
    const entry = this.#entries.get(state.id)
    if (entry === undefined) {
      this.#entries.set(state.id, { state })
      this.#scheduleRebuild()
      return
    }
    // A match scheduled again (a replay started over): its events are from another run.
    if (state.status === 'scheduled') entry.last = undefined
    entry.state = state
    this.#update(entry)
  }

  /** A newer event of a match: its status line follows (the score comes with its state). */
  setLast (id: string, event: MatchEvent): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    entry.last = event
    this.#update(entry)
  }

  /** Marks the selected row. */
  select (id: string | null): void {
    this.#selected = id
    for (const [key, e] of this.#entries) e.row?.setAttribute('aria-pressed', String(key === id))
  }

  /** Forgets every match (new credentials: the states come again). */
  clear (): void {
    this.#entries.clear()
    this.#root.replaceChildren(h('p', { class: 'hint' }, 'Waiting for the matches…'))
  }

  #scheduleRebuild (): void {
    if (this.#rebuild !== undefined) return
    this.#rebuild = setTimeout(() => {
      this.#rebuild = undefined
      this.#build()
    }, 0)
  }

  #build (): void {
    const days = groupByDay([...this.#entries.values()].map((e) => e.state))
    const sections = days.map((day) => h('section', { class: 'day', 'data-date': day.date },
      h('h2', {}, dayLabel(day.date), day.rounds.length > 0 ? h('small', {}, ` ${day.rounds.join(' · ')}`) : null),
      ...day.matches.map((m) => {
        const entry = this.#entries.get(m.id) as Entry
        entry.row = this.#row(entry)
        return entry.row
      })))
    this.#root.replaceChildren(...sections)
  }

  #row (entry: Entry): HTMLButtonElement {
    const id = entry.state.id
    const row = h('button', { type: 'button', class: 'row', 'data-match': id, 'aria-pressed': String(id === this.#selected), onclick: () => this.#onSelect(id) },
      h('span', { class: 'status' }),
      h('span', { class: 'team team1' }),
      h('span', { class: 'score' }),
      h('span', { class: 'team team2' }),
      h('span', { class: 'meta' }))
    this.#fill(row, entry)
    return row
  }

  #update (entry: Entry): void {
    if (entry.row !== undefined) this.#fill(entry.row, entry)
  }

  #fill (row: HTMLButtonElement, entry: Entry): void {
    const s = entry.state
    const status = statusLine(s, entry.last)
    row.dataset.status = s.status
    row.dataset.phase = status.kind
    const [st, t1, sc, t2, meta] = Array.from(row.children) as HTMLElement[]
    st.textContent = status.text
    t1.textContent = s.team1
    t2.textContent = s.team2
    sc.textContent = s.status === 'scheduled' ? 'v' : scoreText(s.score, s.penalties)
    meta.textContent = s.group ?? s.round ?? ''
    t1.classList.toggle('winner', s.status === 'finished' && winner(s) === 1)
    t2.classList.toggle('winner', s.status === 'finished' && winner(s) === 2)
  }
}

/** 1 or 2 for the side that won (on penalties too), 0 for a draw. */
function winner (s: MatchState): 0 | 1 | 2 {
  const [x, y] = s.penalties ?? s.score
  return x > y ? 1 : y > x ? 2 : 0
}
