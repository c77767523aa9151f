// The scoreboard page (served at `/`): every match from the retained `matches/+/state` topics, grouped by day; the
// selected match's feed through the client library's watchFeed (history, then live); the latest event of each other
// live match (`last-1`) for its minute; the connection state and the feed position. ui/README.md describes it.
import '../../mqtt-browser/prelude.js'
import { Viewer, type FeedSubscription } from '../../../client/src/index.js'
import { brokerUrls, connackCode, refusalText, storeCredentials, takeViewerCredentials, type Credentials } from '../shared/access.js'
import { byId } from '../shared/dom.js'
import { LinkStatus } from '../shared/link-status.js'
import { MatchList } from './match-list.js'
import { MatchPanel } from './match-panel.js'
import { parseMatchEvent, parseMatchState } from './matches.js'
import { signinDialog } from './signin.js'
import '../shared/style.css'

const CREDENTIALS_KEY = 'tribune.viewer'
const feedTopic = (id: string): string => `matches/${id}/events`

const link = new LinkStatus(byId('link'))
const who = byId('who')
const panel = new MatchPanel(byId('match'))
const list = new MatchList(byId('matches'), (id) => { select(id) })
const ask = signinDialog((creds) => {
  storeCredentials(CREDENTIALS_KEY, creds)
  start(creds)
})
byId('signin').addEventListener('click', () => ask())

let viewer: Viewer | null = null
// `?match=` names one match id (one topic level: no wildcard, no `/`); anything else is ignored.
const asked = new URLSearchParams(window.location.search).get('match')
let selected: string | null = asked !== null && /^[A-Za-z0-9._-]+$/.test(asked) ? asked : null
/** The selected match's feed (history then live). */
let feed: FeedSubscription | null = null
/** `last-1` feeds of the other live matches, for their minute. */
const minuteFeeds = new Map<string, FeedSubscription>()

/** Connects (again) with these credentials (null: anonymous): everything is subscribed afresh. */
function start (creds: Credentials | null): void {
  const old = viewer
  if (old !== null) void old.close()
  feed = null
  minuteFeeds.clear()
  list.clear()
  who.textContent = creds === null ? 'anonymous' : creds.username === 'apikey' ? 'API key' : 'token'
  link.connecting()
  let urls: string[]
  try {
    urls = brokerUrls(window.location, document)
  } catch (err) {
    link.refused((err as Error).message)
    return
  }
  const v = Viewer.connect(urls, {
    ...(creds === null ? {} : { username: creds.username, password: creds.password }),
    // A page is one viewer among many: short retries while the broker restarts, the library's jitter spreading them.
    reconnect: { baseMs: 300, capMs: 5000 }
  })
  viewer = v
  v.on('connect', () => {
    // Back after a loss: with a feed selected, caught up once it is live again (its missed messages replayed from
    // its position); otherwise now (the retained states come again with the new subscription).
    if (!link.away) link.live()
    else if (feed === null || feed.state === 'live') link.caughtUp('states subscribed again')
    else link.reconnecting({ note: 'connected, resuming the feed' })
  })
  v.on('disconnect', () => link.reconnecting())
  v.on('reconnecting', (info) => link.reconnecting(info))
  v.on('error', (err) => {
    const code = connackCode(err)
    if (code !== 4 && code !== 5) return
    // Wrong or unwelcome credentials: retrying cannot help, ask for others.
    void v.close()
    if (viewer === v) viewer = null
    link.refused(`Sign-in refused: ${refusalText(code)}`)
    ask(refusalText(code))
  })
  v.watchState('matches/+/state', ({ payload, topic }) => {
    const state = parseMatchState(payload)
    if (state === null || topic !== `matches/${state.id}/state`) return
    list.setState(state)
    if (state.id === selected) panel.setState(state, list.last(state.id))
    syncMinuteFeeds()
  })
  if (selected !== null) openFeed(v, selected)
}

/** Chooses the match whose feed is shown (its id goes in the address, `?match=`, for a link or a reload). */
function select (id: string): void {
  if (id === selected && feed !== null) return
  selected = id
  const url = new URL(window.location.href)
  url.searchParams.set('match', id)
  window.history.replaceState(null, '', url)
  if (viewer !== null) openFeed(viewer, id)
  syncMinuteFeeds()
}

function openFeed (v: Viewer, id: string): void {
  if (feed !== null) void feed.close('another match selected')
  list.select(id)
  panel.open(id, list.state(id))
  const sub = v.watchFeed(feedTopic(id), { from: 'all' }, (envelope) => {
    const event = panel.add(envelope.seq, envelope.data)
    if (event !== null) {
      list.setLast(id, event)
      panel.setState(list.state(id), event)
    }
    panel.setPosition(sub.position, sub.state)
  })
  feed = sub
  sub.on('state', (change) => {
    panel.setPosition(sub.position, change.new)
    if (sub !== feed) return
    if (change.new === 'resubscribing') link.reconnecting({ note: change.reason })
    // Live again after a lost connection or a gap: the missed messages follow from the position.
    if (change.new === 'live' && change.old === 'resubscribing') {
      link.caughtUp(sub.position === undefined ? 'from the start' : `resumed after seq ${sub.position.seq}`)
    }
  })
  sub.on('reset', (notice) => panel.restart(notice.reason))
  sub.on('error', (err) => { link.live(err.message) })
}

/** Keeps one `last-1` feed open per live match other than the selected one. */
function syncMinuteFeeds (): void {
  const v = viewer
  if (v === null) return
  for (const [id, state] of list.states) {
    const wanted = state.status === 'live' && id !== selected
    const open = minuteFeeds.get(id)
    if (wanted && open === undefined) {
      minuteFeeds.set(id, v.watchFeed(feedTopic(id), { from: 'last-1' }, (envelope) => {
        const event = parseMatchEvent(envelope.data)
        if (event !== null) list.setLast(id, event)
      }))
    } else if (!wanted && open !== undefined) {
      minuteFeeds.delete(id)
      void open.close('not needed')
    }
  }
}

start(takeViewerCredentials(CREDENTIALS_KEY))
