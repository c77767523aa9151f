// The viewer's sign-in form: an API key or a token (JWT), or anonymous. The broker checks them at CONNECT.
import { byId } from '../shared/dom.js'
import type { Credentials } from '../shared/access.js'

/**
 * Wires the dialog. `onChoice(credentials | null)` when the person signs in (null: watch anonymously).
 * @returns `ask(error?)`: opens the dialog, with the reason the last attempt was refused when there was one
 */
export function signinDialog (onChoice: (creds: Credentials | null) => void): (error?: string) => void {
  const dialog = byId<HTMLDialogElement>('signin-dialog')
  const form = byId<HTMLFormElement>('signin-form')
  const secret = byId<HTMLInputElement>('signin-secret')
  const error = byId('signin-error')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const kind = new FormData(form).get('kind') === 'jwt' ? 'jwt' : 'apikey'
    const value = secret.value.trim()
    if (value === '') return
    secret.value = ''
    dialog.close()
    onChoice({ username: kind, password: value })
  })
  byId('signin-anonymous').addEventListener('click', () => {
    dialog.close()
    onChoice(null)
  })
  return (message?: string) => {
    error.hidden = message === undefined
    error.textContent = message ?? ''
    if (!dialog.open) dialog.showModal()
    secret.focus()
  }
}
