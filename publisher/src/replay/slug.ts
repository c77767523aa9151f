/**
 * Match ids as defined by the Tribune contract (the README's contract section, "Match state"):
 * `<date>-<team1>-<team2>` in lower-case ASCII, diacritics stripped via Unicode NFKD,
 * every run of non-alphanumerics turned into a single '-', no leading or trailing '-'.
 */

/**
 * Turns free text into a lower-case ASCII slug.
 * Decomposes with NFKD and drops the combining marks (so "Curaçao" -> "curacao"), then replaces
 * each run of characters outside [a-z0-9] by one '-' and trims '-' at both ends
 * ("Côte d'Ivoire" -> "cote-d-ivoire", "Bosnia & Herzegovina" -> "bosnia-herzegovina").
 * Characters without an ASCII decomposition (e.g. "ß", "ø", CJK) become separators.
 * @param text any string
 * @returns the slug, possibly empty when `text` has no ASCII letters or digits
 */
export function slugify (text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
}

/**
 * The contract's match id, e.g. `matchId('2022-12-18', 'Argentina', 'France')` -> `2022-12-18-argentina-france`.
 * @param date ISO date `YYYY-MM-DD` (the match's local date as given in the data file)
 * @param team1 home team name as written in the data file
 * @param team2 away team name as written in the data file
 */
export function matchId (date: string, team1: string, team2: string): string {
  return slugify(`${date}-${team1}-${team2}`)
}
