// A few DOM helpers instead of a framework: the pages are two lists and a table updated in place.

/** Attributes of {@link h}: `class`, `data-*`, `aria-*` and other attributes as strings; event handlers as functions. */
export type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

/**
 * Makes an element: `h('li', { class: 'goal', 'data-seq': 3 }, 'Messi ', h('small', {}, 'pen.'))`.
 * Attributes whose value is `undefined` or `false` are left out, `true` gives an empty attribute; `on<event>`
 * functions become listeners. Children are nodes or text (never parsed as HTML).
 */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Array<Node | string | null | undefined>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children) if (child !== null && child !== undefined) el.append(child)
  return el
}

/** The element with this id, or an Error naming it (the page's HTML is ours: a missing one is a bug). */
export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the page has no element #${id}`)
  return el as T
}
