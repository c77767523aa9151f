// The operations page (served at `/ops`): an operator logs in (user name and password, or `jwt` and a token), the
// page subscribes to `$SYS/+/stats` (every node's statistics document, every --sys-interval seconds) and asks every
// node for its figures at once with `$admin` node.stats; it shows each node of the cluster in a table and small
// live charts of the last minutes. ui/README.md describes it.
import '../../mqtt-browser/prelude.js'
import { SubscriptionRefusedError, Viewer } from '../../../client/src/index.js'
import { brokerUrls, connackCode, refusalText, storeCredentials, storedCredentials, type Credentials } from '../shared/access.js'
import { byId } from '../shared/dom.js'
import { LinkStatus } from '../shared/link-status.js'
import { AdminChannel } from './admin.js'
import { ClusterView } from './cluster-view.js'
import { parseStats, type StatsDoc } from './series.js'
import '../shared/style.css'

const CREDENTIALS_KEY = 'tribune.operator'
/** Without a `$SYS` document for this long, the page asks every node itself (statistics off: --sys-interval 0). */
const ASK_AFTER_MS = 12_000
/** ms after a connect before the first `node.stats` request (then every 3 times that until figures come). */
const FIRST_ASK_MS = 300

const link = new LinkStatus(byId('link'))
const who = byId('who')
const form = byId<HTMLFormElement>('login')
const loginError = byId('login-error')
const logout = byId<HTMLButtonElement>('logout')
const cluster = byId('cluster')
const view = new ClusterView(byId('nodes'), byId('charts'), byId('summary'))

let viewer: Viewer | null = null
let poll: ReturnType<typeof setInterval> | undefined

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const data = new FormData(form)
  const creds = { username: String(data.get('username') ?? '').trim(), password: String(data.get('password') ?? '') }
  byId<HTMLInputElement>('login-password').value = ''
  storeCredentials(CREDENTIALS_KEY, creds)
  start(creds)
})
logout.addEventListener('click', () => {
  storeCredentials(CREDENTIALS_KEY, null)
  stop()
  showLogin()
})

function showLogin (error?: string): void {
  cluster.hidden = true
  logout.hidden = true
  form.hidden = false
  loginError.hidden = error === undefined
  loginError.textContent = error ?? ''
  byId<HTMLInputElement>(byId<HTMLInputElement>('login-user').value === '' ? 'login-user' : 'login-password').focus()
}

function stop (): void {
  clearInterval(poll)
  const v = viewer
  viewer = null
  if (v !== null) void v.close()
}

/** Connects with these credentials (null: none, which a broker in local mode lets administer). */
function start (creds: Credentials | null): void {
  stop()
  view.clear()
  form.hidden = true
  who.textContent = creds === null ? '' : creds.username
  link.connecting()
  let urls: string[]
  try {
    urls = brokerUrls(window.location, document)
  } catch (err) {
    link.refused((err as Error).message)
    return
  }
  const v = Viewer.connect(urls, { ...(creds ?? {}), reconnect: { baseMs: 300, capMs: 5000 } })
  viewer = v
  const show = (doc: StatsDoc): void => {
    cluster.hidden = false
    logout.hidden = creds === null
    view.add(doc)
  }
  const admin = new AdminChannel(v, (answer) => {
    if (answer.nodes !== undefined) view.knownNodes(answer.nodes)
    const doc = answer.ok && answer.command === 'node.stats' ? parseStats(answer.result) : null
    if (doc !== null) show(doc)
  })
  const refuse = (text: string): void => {
    stop()
    link.refused(text)
    showLogin(text)
  }
  v.on('connect', () => {
    link.caughtUp('statistics subscribed again')
    admin.connected()
    // Asked once its subscriptions had time to be answered: a client that is not an operator (anonymous on a
    // public listener) has `$SYS` refused first and stops here, and never publishes to `$admin`, which would close its
    // connection, over and over. Asked again each second until the first figures come (an answer sent before the
    // answers' subscription was in place is lost).
    const ask = (): void => {
      if (viewer !== v || view.lastDocAt > 0) return
      admin.ask('node.stats')
      setTimeout(ask, FIRST_ASK_MS * 3)
    }
    setTimeout(ask, FIRST_ASK_MS)
  })
  v.on('disconnect', () => link.reconnecting())
  v.on('reconnecting', (info) => link.reconnecting(info))
  v.on('error', (err) => {
    const code = connackCode(err)
    // The page's own first try, without credentials, on a listener that wants them: the form, without an error.
    if ((code === 4 || code === 5) && creds === null) refuse('Operators only: log in')
    else if (code === 4 || code === 5) refuse(`Login refused: ${refusalText(code)}`)
    // Not an operator: the broker refuses `$SYS` to every other role.
    else if (err instanceof SubscriptionRefusedError) refuse(creds === null ? 'Operators only: log in' : `${creds.username} is not an operator here ($SYS refused)`)
  })
  v.watchState('$SYS/+/stats', ({ payload }) => {
    const doc = parseStats(payload)
    if (doc !== null) show(doc)
  })
  let askedAt = Date.now()
  poll = setInterval(() => {
    view.tick()
    const now = Date.now()
    if (now - Math.max(view.lastDocAt, askedAt) > ASK_AFTER_MS) {
      askedAt = now
      admin.ask('node.stats')
    }
  }, 1000)
}

start(storedCredentials(CREDENTIALS_KEY))
