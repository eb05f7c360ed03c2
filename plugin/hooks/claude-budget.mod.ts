// claude-budget's mod: Claude Code 2.1.286+ loads it in-process (plugin/hooks/hooks.json, "modules").
//
// It counts every model request of the session — main loop and subagents, as `turn.step` sees
// them — into the project's ledger through Python (`budget_state.hook --mod`, one process per
// request, JSON on its private stdin/stdout; no port), so prices, windows and scopes are the
// hooks' own. In kill mode it refuses the next request of a run whose last response put a scope
// over, and denies that run's tool calls and subagents; it answers /budget without a model call;
// it draws a live band above the prompt. The hooks of a session the mod counts stand down for
// counting (the handshake, see budget_state/mod/_mod.py); without the mod they count everything.
//
// Typed against the declarations Claude Code writes beside a loaded mod
// (plugin/.claude-plugin/types, checked by `tsc` in scripts/lint.sh).
import type { EngineInterface, HookFailure, ModelUsage, Register, TurnStepResult, TurnUsage } from 'claude-code'

const PROTOCOL = 1
const NAME = 'claude-budget'

type Band = { text: string; mode: string }
type Answer = {
  protocol?: number
  error?: string
  on_error?: string
  absent?: boolean
  claimed?: boolean
  stop?: string | null
  run?: string | null
  scope?: string | null
  notes?: string[]
  band?: Band
  text?: string
  solo?: { path: string; text: string }
}

// One session per Claude Code process (a mod's worker lives in it).
let session: string | null = null
let root = ''
let env: Record<string, string> = {}
let counting = false // the handshake is ours: this mod counts the session
let ready: Promise<void> | null = null
let onError = 'open'
let mode = 'warn' // the project's mode, as the last answer said: kill decides before each request
let told = false // the one line about a failure was said
let broken: string | null = null // on_error closed and a request could not be counted: refuse the rest
let pending: Promise<unknown> = Promise.resolve() // records not yet answered, in order
let stopAll: string | null = null // kill mode: an overall scope is over
const stops = new Map<string, string>() // run (prompt id) -> kill mode's reason
const runOf = new Map<string, string>() // "a:<agentId>" or "p:<promptId>" -> run
let band: Band | null = null
let bandOn = true
// Requests sent whose usage is not yet queued to be counted, and a measure that came meanwhile:
// Claude Code reports a moved window as the response's headers arrive, before its usage is known,
// and the move must be charged once that request is in the ledger, not before.
let inFlight = 0
let deferredMeasure: Measure | null = null
// Each record's place in this mod's order, so one sent again (its child ended before answering)
// is charged once; and what was recorded per subagent, to reconcile with Claude Code's own count.
const instance = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
let seq = 0
const recorded = new Map<string, Map<string, number[]>>() // agentId -> model -> four counts
let solo: { path: string; text: string } | null = null // the handshake naming no child (see startServer)
let ending = false // session.end: the child is being stopped, not lost
let transcript = '' // the session's transcript (a handover moves the hooks' cursors over it)
const unrecorded: Record<string, unknown>[] = [] // records that failed: a handover makes them

// The shell line that finds claude-budget's Python exactly as the installed hook lines find it
// (CLAUDE_BUDGET_PYTHON, the project's .venv, PATH; always isolated: python -I), else this plugin's
// own runner. FIND_PYTHON is budget_state._wiring._FIND verbatim (a test keeps the two equal).
// BEGIN FIND
const FIND_PYTHON = "if [ -x \"${CLAUDE_BUDGET_PYTHON:-}\" ]; then set -- \"$CLAUDE_BUDGET_PYTHON\" -I -m budget_state.hook; elif [ -x \"$CLAUDE_PROJECT_DIR/.venv/bin/claude-budget-hook\" ] && [ -x \"$CLAUDE_PROJECT_DIR/.venv/bin/python\" ]; then set -- \"$CLAUDE_PROJECT_DIR/.venv/bin/python\" -I -m budget_state.hook; elif h=$(command -v claude-budget-hook 2>/dev/null); then l=; read -r l <\"$h\"; case $l in '#!/'*' '*|'#!/bin/sh') unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP PYTHONWARNINGS PYTHONPLATLIBDIR; PYTHONNOUSERSITE=1; export PYTHONNOUSERSITE; set -- \"$h\";; '#!/'*) set -- \"${l#??}\" -I -m budget_state.hook;; *) set -- \"$h\";; esac; else {missing}; fi; "
// END FIND
const FIND =
  FIND_PYTHON.replace(
    '{missing}',
    `if [ -f "$1" ]; then exec sh "$1" Mod; fi; echo '{"protocol":${PROTOCOL},"absent":true}'; exit 0`,
  ) + 'exec "$@" --mod'

// The session's Python child (see budget_state/mod/_mod.py, serve): requests go through its FIFO in
// the user's 0700 state folder, answers come back on its stdout, matched by id. Without it (it
// could not start, or it ended), one `$.process.run` per request.
let fifo: string | null = null
let nextId = 0
const waiting = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>()

class ChildEnded extends Error {
  constructor() {
    super("claude-budget's Python child ended")
  }
}

function serverLine(line: string): Answer | null {
  try {
    const answer = JSON.parse(line) as Answer & { id?: number; ready?: boolean; fifo?: string }
    if (typeof answer.id === 'number') {
      const w = waiting.get(answer.id)
      waiting.delete(answer.id)
      w?.resolve(answer)
      return null
    }
    return answer
  } catch {
    return null
  }
}

async function startServer($: EngineInterface): Promise<boolean> {
  const child = $.process.spawn({
    argv: ['sh', '-c', FIND, 'sh', `${root}/hooks/claude-budget.sh`],
    env: { ...env, CLAUDE_BUDGET_MOD_SESSION: session ?? '' },
  })
  let started: (ok: boolean) => void = () => undefined
  const ready = new Promise<boolean>((resolve) => (started = resolve))
  void (async () => {
    let buf = ''
    try {
      for await (const { stream, text } of child) {
        if (stream !== 'stdout') continue
        buf += text
        let i: number
        while ((i = buf.indexOf('\n')) >= 0) {
          const first = serverLine(buf.slice(0, i))
          buf = buf.slice(i + 1)
          const f = (first as { fifo?: unknown } | null)?.fifo
          if (first && typeof f === 'string') {
            fifo = f
            started(true)
          } else if (first) {
            started(false) // absent, or an error before it served
          }
        }
      }
    } catch {
      // it could not start, or the stream broke: as if it ended
    }
    // Ended (Claude Code stops it as the session ends; or it died): later requests go one process
    // each, and those it had not answered are sent again that way (each record carries its place
    // in order: one the child had charged is not charged twice). The handshake named the child:
    // the mod counts on, so it names none now (else the hooks would count too).
    const lost = fifo !== null && !ending && counting && solo !== null
    fifo = null
    started(false)
    if (lost && solo) await $.fs.write(solo.path, solo.text).catch(() => undefined)
    for (const w of waiting.values()) w.reject(new ChildEnded())
    waiting.clear()
  })()
  return Promise.race([ready, $.clock.sleep(15000).then(() => false)])
}

async function ask($: EngineInterface, request: Record<string, unknown>): Promise<Answer> {
  const body = { v: PROTOCOL, session, ...request }
  let answer: Answer
  if (fifo !== null) {
    const id = ++nextId
    const answered = new Promise<Answer>((resolve, reject) => waiting.set(id, { resolve, reject }))
    // Opening a FIFO nobody reads waits: a child that just ended must not hold the session
    const wrote = await Promise.race([
      $.fs.write(fifo, JSON.stringify({ ...body, id }) + '\n').then(() => true),
      $.clock.sleep(3000).then(() => false),
    ])
    if (!wrote) {
      waiting.delete(id)
      fifo = null
      return ask($, request) // one process for it, as without the child
    }
    try {
      answer = await answered
    } catch (error) {
      if (error instanceof ChildEnded) return ask($, request) // fifo is null now: one process
      throw error
    }
  } else {
    const ran = await $.process.run(['sh', '-c', FIND, 'sh', `${root}/hooks/claude-budget.sh`], {
      env,
      stdin: JSON.stringify(body),
      timeoutMs: 20000,
    })
    const line = ran.stdout.trim().split('\n').pop() ?? ''
    try {
      answer = JSON.parse(line) as Answer
    } catch {
      throw new Error(`no answer from claude-budget's Python (exit ${ran.exitCode}): ${ran.stderr.trim().slice(-300)}`)
    }
  }
  if (answer.protocol !== undefined && answer.protocol !== PROTOCOL) {
    throw new Error(`claude-budget's Python speaks protocol ${answer.protocol}, this mod ${PROTOCOL}`)
  }
  if (answer.error) throw new Error(answer.error)
  if (answer.band) {
    band = answer.band
    mode = answer.band.mode
  }
  return answer
}

// What a registration's catch was handed: what was thrown, or the own-time budget it overran.
function failure(f: HookFailure): string {
  return f.message ?? (f.kind === 'timeout' ? `it ran past its ${f.budget} ms` : 'it threw')
}

// One line, said once, in the session's transcript (where the user reads it).
function say($: EngineInterface, text: string): void {
  if (told) return
  told = true
  try {
    $.ui.log(text, { to: 'transcript' })
  } catch {
    // no surface: nothing to say it on
  }
}

// Give counting back to the hooks (a handler failed, or the API is not the one we know): the
// records not yet made first (\`inChain\`: called from the records' own chain, which is then
// where this one stands), then Python makes those that failed and moves the hooks past the rest.
async function handOver($: EngineInterface, why: string, inChain = false): Promise<void> {
  const was = counting
  counting = false
  say($, `claude-budget: ${why}; the hooks count this session from here on`)
  if (!inChain) await pending.catch(() => undefined)
  if (was && session) {
    try {
      await ask($, { op: 'handover', cwd: env.CLAUDE_PROJECT_DIR, transcript, records: unrecorded })
    } catch {
      // the handshake names this claude process: it lapses when the session ends
    }
  }
}

// A call on `$` this build lacks throws a TypeError where it is made (the mod API is early
// access): the mod then stays out of the session and the hooks count, as without a mod.
async function start($: EngineInterface, cwd: string): Promise<void> {
  try {
    await begin($, cwd)
  } catch (error) {
    if (!(error instanceof TypeError)) throw error
    counting = false
    say($, `claude-budget: this Claude Code's mod API is not the one the mod knows (${error.message}); the hooks count instead`)
  }
}

async function begin($: EngineInterface, cwd: string): Promise<void> {
  root = $.plugin.root
  // Each $ call is a hop out of the worker: asked together, the Python child starts sooner.
  // (Claude Code's load check wants each $.env.get's name written out: no loop over names.)
  const [sid, hookEnv, info, band, child, ...passed] = await Promise.all([
    $.session.id(),
    $.process.hookEnv(),
    $.session.info(),
    $.env.get('CLAUDE_BUDGET_BAND'),
    $.env.get('CLAUDE_BUDGET_MOD_CHILD'),
    // The settings' env (CLAUDE_BUDGET_PYTHON in settings.local.json, where install put it) and
    // the user's budget variables, which $.process.run does not pass on by itself.
    $.env.get('CLAUDE_BUDGET_PYTHON').then((v) => ['CLAUDE_BUDGET_PYTHON', v] as const),
    $.env.get('CLAUDE_BUDGET_STATE').then((v) => ['CLAUDE_BUDGET_STATE', v] as const),
    $.env.get('CLAUDE_BUDGET_MODE').then((v) => ['CLAUDE_BUDGET_MODE', v] as const),
    $.env.get('CLAUDE_BUDGET_ON_ERROR').then((v) => ['CLAUDE_BUDGET_ON_ERROR', v] as const),
    $.env.get('CLAUDE_BUDGET_DEBUG').then((v) => ['CLAUDE_BUDGET_DEBUG', v] as const),
    $.env.get('CLAUDE_BUDGET_MOD').then((v) => ['CLAUDE_BUDGET_MOD', v] as const),
  ])
  session = sid
  env = { ...hookEnv }
  for (const [name, value] of passed) if (value !== undefined) env[name] = value
  // CLAUDE_BUDGET_MOD=off: the mod stays out (no Python child); the hooks count.
  if (env.CLAUDE_BUDGET_MOD === 'off') return
  if (!env.CLAUDE_PROJECT_DIR) env.CLAUDE_PROJECT_DIR = cwd
  bandOn = band !== 'off'
  transcript = info.transcriptPath
  const pid = Number(hookEnv.CLAUDE_PID)
  // One Python child for the session (measured fastest: BENCHMARKS.md), unless CLAUDE_BUDGET_MOD_CHILD=off
  if (child !== 'off') await startServer($)
  const answer = await ask($, { op: 'hello', cwd, pid: Number.isFinite(pid) ? pid : null, mod: root, transcript })
  if (answer.absent) return // claude-budget is not installed for this project: nothing to count
  onError = answer.on_error === 'closed' ? 'closed' : 'open'
  counting = answer.claimed === true
  solo = answer.solo ?? null
  if (counting && bandOn) $.ui.invalidate('ui.render')
}

// The prompt a turn runs for, asked once a turn (each ask is a hop out of the worker).
const promptOf = new Map<string, string | undefined>() // turnId -> prompt id
async function promptFor($: EngineInterface, turnId: string): Promise<string | undefined> {
  if (promptOf.has(turnId)) return promptOf.get(turnId)
  const { promptId } = await $.session.info()
  promptOf.set(turnId, promptId)
  return promptId
}

// Whether a tool call or a spawn can be refused at all: only kill mode's stops and a closed
// on_error refuse one; otherwise the handler passes it on at once (no hop out of the worker).
function mayRefuse(): boolean {
  return mode === 'kill' || onError === 'closed' || broken !== null || stopAll !== null
}

function runKey(agentId: string | undefined, prompt: string | undefined): string {
  return agentId ? `a:${agentId}` : `p:${prompt ?? ''}`
}

function stopFor(key: string): string | null {
  if (stopAll) return stopAll
  const run = runOf.get(key)
  return run ? stops.get(run) ?? null : null
}

function counts(u: ModelUsage): number[] {
  return [u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens]
}

// After a subagent's step: Claude Code's own count of the agent's requests (`/cost`'s, which holds
// what no turn.step reports: a stream cut mid-way and retried, the agent's compactions) against
// what was recorded for it; the difference is charged to the agent's run, by model, as one more
// request. (The main loop has no such count before the session's end: see docs/mod.md.)
async function reconcileAgent($: EngineInterface, agentId: string, prompt: string | undefined, own: readonly TurnUsage[]): Promise<void> {
  const models = recorded.get(agentId) ?? new Map<string, number[]>()
  recorded.set(agentId, models)
  for (const u of own) {
    const had = models.get(u.model) ?? [0, 0, 0, 0]
    const more = counts(u).map((n, i) => n - (had[i] ?? 0))
    if (more.every((n) => n <= 0)) continue
    const extra: TurnUsage = {
      model: u.model,
      input_tokens: Math.max(0, more[0] ?? 0),
      output_tokens: Math.max(0, more[1] ?? 0),
      cache_creation_input_tokens: Math.max(0, more[2] ?? 0),
      cache_read_input_tokens: Math.max(0, more[3] ?? 0),
    }
    await record($, `a:${agentId}`, agentId, prompt, extra)
  }
}

function plainUsage(usage: TurnUsage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
  }
  if (usage.ephemeral_5m_input_tokens !== undefined || usage.ephemeral_1h_input_tokens !== undefined) {
    out.cache_creation = {
      ephemeral_5m_input_tokens: usage.ephemeral_5m_input_tokens ?? 0,
      ephemeral_1h_input_tokens: usage.ephemeral_1h_input_tokens ?? 0,
    }
  }
  return out
}

// How a refused request's answer begins (claude-budget orchestrate reads it as "stopped").
const STOPPED = 'claude-budget stopped this run:'

function refused(e: { turnId: string; index: number }, reason: string): TurnStepResult {
  return { turnId: e.turnId, index: e.index, answer: `${STOPPED} ${reason}`, toolUses: [], stopReason: 'end_turn', usage: null }
}

async function record(
  $: EngineInterface,
  key: string,
  agentId: string | undefined,
  prompt: string | undefined,
  usage: TurnUsage,
): Promise<void> {
  if (typeof usage.input_tokens !== 'number' || typeof usage.output_tokens !== 'number') {
    await handOver($, 'turn.step gave usage of a shape this mod does not know', true)
    return
  }
  const request = {
    op: 'step',
    seq: [instance, ++seq],
    cwd: env.CLAUDE_PROJECT_DIR,
    prompt: prompt ?? null,
    agent: agentId ?? null,
    model: usage.model,
    usage: plainUsage(usage),
  }
  let answer: Answer
  try {
    answer = await ask($, request)
  } catch (error) {
    unrecorded.push(request)
    throw error
  }
  if (agentId) {
    const models = recorded.get(agentId) ?? new Map<string, number[]>()
    recorded.set(agentId, models)
    const had = models.get(usage.model) ?? [0, 0, 0, 0]
    models.set(usage.model, counts(usage).map((n, i) => n + (had[i] ?? 0)))
  }
  if (answer.run) runOf.set(key, answer.run)
  if (answer.stop) {
    if (answer.scope === 'overall') stopAll = answer.stop
    else if (answer.run) stops.set(answer.run, answer.stop)
  }
  if (bandOn) $.ui.invalidate('ui.render')
}

// A request that could not be counted (its record runs after the step returned): on_error
// closed refuses every request from here on; open gives counting back to the hooks.
async function recordFailed($: EngineInterface, error: unknown): Promise<void> {
  if (onError === 'closed') {
    broken = `claude-budget could not check the budgets, and on_error is closed: ${String(error)}`
    say($, broken)
  } else {
    await handOver($, `a model request could not be counted (${String(error)}), on_error is open`, true)
  }
}

// Kill mode (and a closed on_error that failed) decides before each request, so it waits for the
// requests still being counted — one of them may be the one that crossed. Other modes decide at a
// command's start only: the records run behind, one at a time, and a turn's end waits for them.
async function settled(): Promise<void> {
  if (mode === 'kill' || onError === 'closed') await pending
}

type Measure = { limits: Record<string, { used_percentage: number; resets_at: number | null }> | null; cost: number | null }

async function measure($: EngineInterface, m: Measure): Promise<void> {
  const info = await $.session.info()
  await ask($, { op: 'measure', cwd: env.CLAUDE_PROJECT_DIR, prompt: info.promptId ?? null, cost: m.cost, rate_limits: m.limits })
  if (bandOn) $.ui.invalidate('ui.render')
}

export const register: Register = (on) => {
  on('session.start', async ($, e, next) => {
    const started = await next(e)
    ready = start($, e.cwd).catch((error: unknown) => handOver($, `the mod could not start (${String(error)})`))
    try {
      await $.command.register({
        name: 'budget',
        description: `${NAME}: the token budgets of this project (no model call)`,
        argumentHint: '[/command]',
        immediate: true,
      })
    } catch (error) {
      $.ui.log(`claude-budget: /budget not registered: ${String(error)}`, { to: 'debug' })
    }
    return started
  }).catch(async ($, e, next) => next(e))

  on('turn.step', async function* ($, e, next) {
    if (ready) await ready
    if (!counting) return yield* next(e)
    const prompt = await promptFor($, e.turnId)
    const key = runKey(e.agentId, prompt)
    await settled()
    const reason = broken ?? stopFor(key)
    if (reason) {
      yield { kind: 'text', index: 0, text: `${STOPPED} ${reason}` }
      return refused(e, reason)
    }
    inFlight++
    let result
    try {
      result = yield* next(e)
    } finally {
      inFlight--
    }
    const usage = result.usage
    // a subagent's own count as Claude Code keeps it, as this step left it
    const own = e.agentId && counting ? (await $.agent.list()).find((a) => a.id === e.agentId)?.usage ?? [] : []
    if (usage && counting) {
      pending = pending.then(() => record($, key, e.agentId, prompt, usage)).catch((error: unknown) => recordFailed($, error))
    }
    if (e.agentId && own.length && counting) {
      const agentId = e.agentId
      pending = pending.then(() => reconcileAgent($, agentId, prompt, own)).catch((error: unknown) => recordFailed($, error))
    }
    const due = deferredMeasure
    if (due !== null && inFlight === 0) {
      deferredMeasure = null
      pending = pending.then(() => measure($, due)).catch(() => undefined)
    }
    return result
  }).catch(async function* ($, e, next) {
    if (next.called) {
      // The request went out and was answered, and counting it failed. on_error closed: no
      // request goes out unchecked from here on; open: the hooks count from here on.
      if (onError === 'closed') {
        broken = `claude-budget could not check the budgets, and on_error is closed: ${failure(next.error)}`
        say($, broken)
      } else {
        await handOver($, `a model request could not be counted (${failure(next.error)}), on_error is open`)
      }
      return yield* next(e)
    }
    if (onError === 'closed') {
      const reason = `claude-budget could not check the budgets, and on_error is closed: ${failure(next.error)}`
      say($, reason)
      yield { kind: 'text', index: 0, text: `${STOPPED} ${reason}` }
      return refused(e, reason)
    }
    await handOver($, `the mod failed (${failure(next.error)}), on_error is open`)
    return yield* next(e)
  })

  on('agent.spawn', async ($, e, next) => {
    if (ready) await ready
    if (!counting || !mayRefuse()) return next(e)
    await settled()
    const info = await $.session.info()
    const reason = broken ?? stopFor(runKey(undefined, info.promptId))
    return reason ? { deny: reason } : next(e)
  }).catch(async ($, e, next) => (next.called || onError !== 'closed' ? next(e) : { deny: 'claude-budget could not check the budgets, and on_error is closed' }))

  on('tool.call', async ($, e, next) => {
    if (ready) await ready
    if (!counting || !mayRefuse()) return next(e)
    await settled()
    const info = await $.session.info()
    const reason = broken ?? stopFor(runKey(e.agentId, info.promptId))
    return reason ? { deny: reason } : next(e)
  }).catch(async ($, e, next) => (next.called || onError !== 'closed' ? next(e) : { deny: 'claude-budget could not check the budgets, and on_error is closed' }))

  on('command.run', { command: 'budget' }, async ($, e, next) => {
    if (ready) await ready
    // not counting: this project's hooks answer (a blocked prompt), or another copy of the mod
    if (!counting) return next(e)
    const answer = await ask($, { op: 'status', cwd: env.CLAUDE_PROJECT_DIR, args: e.args })
    if (answer.absent) return next(e)
    return { text: answer.text ?? '', isTextDisplayOnly: true }
  }).catch(async ($, e, next) => (next.called ? next(e) : { text: `claude-budget: /budget failed: ${failure(next.error)}`, isTextDisplayOnly: true }))

  on('session.measure', async ($, e, next) => {
    if (counting) {
      const limits: Record<string, { used_percentage: number; resets_at: number | null }> = {}
      for (const w of e.rateLimits) {
        limits[w.kind] = { used_percentage: w.percentUsed, resets_at: w.resetsAt ? Math.floor(Date.parse(w.resetsAt) / 1000) : null }
      }
      const m: Measure = { limits: e.rateLimits.length ? limits : null, cost: e.cost?.usd ?? null }
      if (m.limits === null) {
        // no plan windows (an API key): nothing for Python to record; the band moves with each step
      } else if (inFlight > 0) {
        deferredMeasure = m // charged after the request in flight is counted (see turn.step)
      } else {
        // The requests that moved the window are in the ledger before the move is charged to them.
        await pending.catch(() => undefined)
        await measure($, m)
      }
    }
    return next(e)
  }).catch(async ($, e, next) => next(e))

  on('turn.complete', async ($, e, next) => {
    promptOf.delete(e.turnId)
    await pending // the turn's requests are all in the ledger before the next prompt (or -p's exit)
    return next(e)
  }).catch(async ($, e, next) => next(e))

  on('session.end', async ($, e, next) => {
    await pending.catch(() => undefined)
    // The mod counted the session to its end: the handshake says so, so the SessionEnd hooks stand
    // down once Claude Code has stopped the Python child. It lapses with this claude process, and
    // the next session's start prunes it.
    // Through the child only: Claude Code has usually stopped it by now, and then the mod wrote
    // the handshake anew without it (startServer) — a process just to say so would cost ~100 ms.
    if (counting && fifo !== null) {
      ending = true
      await ask($, { op: 'end' }).catch(() => undefined)
    }
    counting = false
    return next(e)
  }).catch(async ($, e, next) => next(e))

  on('ui.render', { component: 'AbovePrompt' }, async ($, e, next) => {
    if (!counting || !bandOn || !band) return next(e)
    const { Box, Text } = $.ui.resolve(e)
    return Box({ children: [Text({ children: [band.text] })] })
  }).catch(async ($, e, next) => next(e))

}
