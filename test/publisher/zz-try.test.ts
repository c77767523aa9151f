import { test } from 'vitest'
import { readWorldCupFile } from '../../publisher/src/replay/worldcup.js'
test('x', async () => {
  for (const f of ['2022', '2026']) {
    const wc = await readWorldCupFile(`/work/shared/data/worldcup-${f}.json`)
    console.log(wc.matches.length)
    for (const m of wc.matches) if (m.penalties || m.index < 2 || m.score.et) console.log(m.id, new Date(m.kickoff).toISOString(), m.duration, m.events.map(e => `${e.clock}:${e.event.type}${e.event.type==='goal'?'('+e.event.minute+(e.event.offset?'+'+e.event.offset:'')+')':''}:${e.event.score}`).join(' '))
  }
})
